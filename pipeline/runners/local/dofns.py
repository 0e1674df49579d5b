"""The local streaming runner's ParDo evaluator, tuned: one DoFn instance per step and thread, set up once.

Beam's BundleBasedDirectRunner unpickles a fresh copy of every DoFn, calls its setup() and teardown(), and
inspects its signature for state and timers at *every bundle*. A streaming job makes bundles of a few
elements, so most of its time went there (measured with py-spy: about half of the runner's CPU in
`get_dofn_specs` alone), and every bundle reopened the hot store and rebuilt the agents. Dataflow and Flink
keep a DoFn instance per worker thread and set it up once; this makes the local runner do the same. The
instances are torn down when the job ends: `reuse_local_dofns` is a context around the job. Production
runners are not touched. Installed only on the Beam it was written for (`guard.py`).
Adapted from apache_beam/runners/direct/transform_evaluator.py (Apache License 2.0), Beam 2.77.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Iterator
from typing import Any

from pipeline.runners.local.guard import fixes_apply

# The upstream code this module replaces (start_bundle, finish_bundle: their bodies are copied below), wraps
# (should_execute_serially, get_dofn_specs) or answers through the `_inspect_<method>` hook
# (get_function_arguments), with the sha256 of each one's source when the fix was written (guard.py).
UPSTREAM_SHA256 = {
    "apache_beam.runners.direct.transform_evaluator._ParDoEvaluator.start_bundle": "23c7e2f6f26f091dd2c51711a19deebae07f76c9032a110fce51ca552b3fd13e",  # noqa: E501
    "apache_beam.runners.direct.transform_evaluator._ParDoEvaluator.finish_bundle": "26c32886c271dabb0632e50ec05c8386e224c54e3bb45c41c727589256cce5f7",  # noqa: E501
    "apache_beam.runners.direct.transform_evaluator.TransformEvaluatorRegistry.should_execute_serially": "30fcdba9c0dfdd7e723cdba351e8da5a2993a4dce1c63101f691000c9ca96d62",  # noqa: E501
    "apache_beam.transforms.userstate.get_dofn_specs": "eeb36145d3115aa02ec8d05667f4190084047c5229734d49250d6a950db0e923",  # noqa: E501
    "apache_beam.transforms.core.get_function_arguments": "4c712c85a96792bf8a5c17541305855382cb80b390aa461c747f213ccdfba9fd",  # noqa: E501
}

_LOCK = threading.Lock()
# (id of the ParDo transform, thread id) -> (the transform, its DoFn instance, whether it is stateful). The
# transform itself is held so that its id cannot be reused by another while cached.
_CACHE: dict[tuple[int, int], tuple[Any, Any, bool]] = {}


def _dofn_for(evaluator: Any) -> tuple[Any, bool, bool]:
    """The cached DoFn for this step on this thread: (dofn, stateful, first use)."""
    from apache_beam.internal import pickler
    from apache_beam.transforms.userstate import is_stateful_dofn

    transform = evaluator._applied_ptransform.transform
    key = (id(transform), threading.get_ident())
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] is transform:
        return cached[1], cached[2], False
    dofn = pickler.roundtrip(transform.dofn) if evaluator._perform_dofn_pickle_test else transform.dofn
    _memoise_signatures(dofn)
    stateful = is_stateful_dofn(dofn)
    with _LOCK:
        _CACHE[key] = (transform, dofn, stateful)
    return dofn, stateful, True


def _memoise_signatures(dofn: Any) -> None:
    """Inspect each method of the DoFn once. Every bundle builds a DoFnRunner, which inspects every method's
    signature again; Beam asks an object for `_inspect_<method>` first, so the answers are kept there."""
    from apache_beam.transforms import core

    for name in dir(dofn):
        if name.startswith("_inspect_") or hasattr(dofn, f"_inspect_{name}"):
            continue
        if not isinstance(getattr(dofn, name, None), types.MethodType):
            continue
        try:
            found = core.get_function_arguments(dofn, name)
            setattr(dofn, f"_inspect_{name}", lambda found=found: found)
        except Exception:  # noqa: BLE001 - a method Beam cannot inspect is left to Beam
            continue


def _start_bundle(self: Any) -> None:
    from apache_beam import coders, pvalue
    from apache_beam.runners.common import DoFnRunner, DoFnState
    from apache_beam.runners.direct.direct_userstate import DirectUserStateContext
    from apache_beam.runners.direct.transform_evaluator import _TaggedReceivers
    from apache_beam.transforms.userstate import get_dofn_specs
    from apache_beam.utils import counters

    transform = self._applied_ptransform.transform
    self._tagged_receivers = _TaggedReceivers(self._evaluation_context)
    for output_tag in self._applied_ptransform.outputs:
        output_pcollection = pvalue.PCollection(None, tag=output_tag)
        output_pcollection.producer = self._applied_ptransform
        self._tagged_receivers[output_tag] = self._evaluation_context.create_bundle(output_pcollection)
        self._tagged_receivers[output_tag].tag = output_tag
    self._counter_factory = counters.CounterFactory()
    dofn, stateful, first = _dofn_for(self)
    args = transform.args if hasattr(transform, "args") else []
    kwargs = transform.kwargs if hasattr(transform, "kwargs") else {}
    self.user_state_context = None
    self.user_timer_map = {}
    if stateful:
        kv_type_hint = self._applied_ptransform.inputs[0].element_type
        if kv_type_hint and kv_type_hint != Any:
            self.key_coder = coders.registry.get_coder(kv_type_hint).key_coder()
        else:
            self.key_coder = coders.registry.get_coder(Any)
        self.user_state_context = DirectUserStateContext(self._step_context, dofn, self.key_coder)
        _, all_timer_specs = get_dofn_specs(dofn)
        for timer_spec in all_timer_specs:
            self.user_timer_map[f"user/{timer_spec.name}"] = timer_spec
    self.runner = DoFnRunner(
        dofn,
        args,
        kwargs,
        self._side_inputs,
        self._applied_ptransform.inputs[0].windowing,
        tagged_receivers=self._tagged_receivers,
        step_name=self._applied_ptransform.full_label,
        state=DoFnState(self._counter_factory),
        user_state_context=self.user_state_context,
    )
    if first:
        self.runner.setup()
    self.runner.start()


def _finish_bundle(self: Any) -> Any:
    from apache_beam.runners.direct.util import TransformResult

    self.runner.finish()  # no teardown: the instance serves the next bundle
    bundles = list(self._tagged_receivers.values())
    result_counters = self._counter_factory.get_counters()
    if self.user_state_context:
        self.user_state_context.commit()
        self.user_state_context.reset()
    return TransformResult(self, bundles, [], result_counters, None)


# Beam's originals while the fixes are installed, and the wrappers' memos: all undone by restore_dofn_reuse().
_ORIGINAL: dict[str, Any] = {}
_SERIAL: dict[int, tuple[Any, bool]] = {}
_SPECS: dict[int, tuple[Any, Any]] = {}


def _should_execute_serially(self: Any, applied_ptransform: Any) -> bool:
    # Asked for every bundle of every step; the answer inspects the DoFn's signatures and never changes.
    known = _SERIAL.get(id(applied_ptransform))
    if known is None or known[0] is not applied_ptransform:
        known = (applied_ptransform, _ORIGINAL["should_execute_serially"](self, applied_ptransform))
        _SERIAL[id(applied_ptransform)] = known
    return known[1]


def _get_dofn_specs(dofn: Any) -> Any:
    # Every DoFnRunner (one a bundle) walks the DoFn's methods for state and timers; they never change.
    known = _SPECS.get(id(dofn))
    if known is None or known[0] is not dofn:
        known = (dofn, _ORIGINAL["get_dofn_specs"](dofn))
        _SPECS[id(dofn)] = known
    return known[1]


def install_dofn_reuse() -> bool:
    """Patch the local runner (idempotent). Returns whether the fixes are installed: not on a Beam other than
    the one they were written for (one warning is logged)."""
    if _ORIGINAL:
        return True
    if not fixes_apply():
        return False
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    evaluator = transform_evaluator._ParDoEvaluator
    registry = transform_evaluator.TransformEvaluatorRegistry
    _ORIGINAL.update(
        start_bundle=evaluator.__dict__["start_bundle"],
        finish_bundle=evaluator.__dict__["finish_bundle"],
        should_execute_serially=registry.__dict__["should_execute_serially"],
        get_dofn_specs=userstate.get_dofn_specs,
    )
    evaluator.start_bundle, evaluator.finish_bundle = _start_bundle, _finish_bundle
    registry.should_execute_serially = _should_execute_serially
    userstate.get_dofn_specs = _get_dofn_specs
    return True


def restore_dofn_reuse() -> None:
    """Put Beam's methods back, forget the memos and tear down the cached DoFns (idempotent)."""
    if _ORIGINAL:
        from apache_beam.runners.direct import transform_evaluator
        from apache_beam.transforms import userstate

        evaluator = transform_evaluator._ParDoEvaluator
        evaluator.start_bundle = _ORIGINAL["start_bundle"]
        evaluator.finish_bundle = _ORIGINAL["finish_bundle"]
        transform_evaluator.TransformEvaluatorRegistry.should_execute_serially = _ORIGINAL["should_execute_serially"]
        userstate.get_dofn_specs = _ORIGINAL["get_dofn_specs"]
        _ORIGINAL.clear()
    _SERIAL.clear()
    _SPECS.clear()
    teardown_cached_dofns()


@contextlib.contextmanager
def reuse_local_dofns() -> Iterator[None]:
    """While a local streaming job runs: its DoFns set up once per step and thread; torn down at the end.
    On a Beam other than the one the fixes were written for, nothing is patched (guard.py)."""
    if not install_dofn_reuse():
        yield
        return
    try:
        yield
    finally:
        restore_dofn_reuse()


def teardown_cached_dofns() -> int:
    """Tear down every cached DoFn (the job has ended); returns how many."""
    with _LOCK:
        cached = list(_CACHE.values())
        _CACHE.clear()
    for _transform, dofn, _stateful in cached:
        try:
            dofn.teardown()
        except Exception:  # noqa: BLE001 - one failing teardown must not keep the others' resources open
            pass
    return len(cached)
