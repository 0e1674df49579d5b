"""The local streaming runner's ParDo evaluator, tuned: one DoFn instance per step and thread, set up once.

Beam's BundleBasedDirectRunner unpickles a fresh copy of every DoFn, calls its setup() and teardown(), and
inspects its signature for state and timers at *every bundle*. A streaming job makes bundles of a few
elements, so most of its time went there (measured with py-spy: about half of the runner's CPU in
`get_dofn_specs` alone), and every bundle reopened the hot store and rebuilt the agents. Dataflow and Flink
keep a DoFn instance per worker thread and set it up once; this makes the local runner do the same. The
instances are torn down when the job ends: `reuse_local_dofns` is a context around the job. Production
runners are not touched.
Adapted from apache_beam/runners/direct/transform_evaluator.py (Apache License 2.0), Beam 2.77.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Iterator
from typing import Any

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


@contextlib.contextmanager
def reuse_local_dofns() -> Iterator[None]:
    """While a local streaming job runs: its DoFns set up once per step and thread; torn down at the end."""
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    evaluator = transform_evaluator._ParDoEvaluator
    registry = transform_evaluator.TransformEvaluatorRegistry
    original = evaluator.start_bundle, evaluator.finish_bundle, registry.should_execute_serially
    serial: dict[int, tuple[Any, bool]] = {}

    def should_execute_serially(self: Any, applied_ptransform: Any) -> bool:
        # Asked for every bundle of every step; the answer inspects the DoFn's signatures and never changes.
        known = serial.get(id(applied_ptransform))
        if known is None or known[0] is not applied_ptransform:
            known = (applied_ptransform, original[2](self, applied_ptransform))
            serial[id(applied_ptransform)] = known
        return known[1]

    specs: dict[int, tuple[Any, Any]] = {}
    original_specs = userstate.get_dofn_specs

    def get_dofn_specs(dofn: Any) -> Any:
        # Every DoFnRunner (one a bundle) walks the DoFn's methods for state and timers; they never change.
        known = specs.get(id(dofn))
        if known is None or known[0] is not dofn:
            known = (dofn, original_specs(dofn))
            specs[id(dofn)] = known
        return known[1]

    evaluator.start_bundle, evaluator.finish_bundle = _start_bundle, _finish_bundle
    registry.should_execute_serially = should_execute_serially
    userstate.get_dofn_specs = get_dofn_specs
    try:
        yield
    finally:
        evaluator.start_bundle, evaluator.finish_bundle, registry.should_execute_serially = original
        userstate.get_dofn_specs = original_specs
        teardown_cached_dofns()


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
