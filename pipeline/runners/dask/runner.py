"""The batch and replay graph on a dask.distributed cluster: Beam's DaskRunner, with what its translation lacks.

Beam 2.77's DaskRunner (`apache_beam/runners/dask`) translates Create, ParDo, GroupByKey and Flatten to Dask bags,
but, measured on this graph, it:
- computes only the bag of the *last* transform visited, so every other branch (the hot store, the tiers, the dead
  letters) never runs;
- puts every output of a multi-output ParDo (`with_outputs`) in one bag, so the consumers of `events` also receive
  the `dead_letter` output and the other way round;
- collects a bundle's outputs before `finish_bundle`, so what a DoFn emits there (`BatchElements`' last batch, the
  metrics' pre-aggregates) is lost;
- drops timestamps and windows between steps, and translates `WindowInto` and `GroupAlsoByWindow` (ParDo
  subclasses) as no-ops;
- has no user state or timers (a stateful DoFn fails), no metrics (`result.metrics()` raises), and translates
  `Reshuffle` as a no-op, so a stage's input keeps the partitioning of its source (one file pattern: one partition).

Here each is answered with the transforms it has: every ParDo subclass runs as a ParDo whose outputs keep their
tag, timestamp and windows, each consumer reads its own tag; `finish_bundle` outputs are kept; every leaf is
computed; GroupByKey keeps windowed values so GroupAlsoByWindow can window them; `Reshuffle` repartitions;
`pipeline.io.batching.BatchPerKey` (stateful) becomes a GroupByKey cut into batches of the same bound (its keys are
already sharded, so no group is a partition); metrics are the workers' own tallies (`transforms.common`), summed.
A DoFn is set up once per worker process and step (not per partition) and torn down when the job ends.
Streaming is out of scope: Dask bags are bounded.

Fixes of private Beam code: applied only on the Beam they were written for (`FIXED_FOR_BEAM`).
"""

from __future__ import annotations

import atexit
import dataclasses
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metricbase import MetricName
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor, PTransformOverride
from apache_beam.runners.common import Receiver
from apache_beam.runners.runner import PipelineResult, PipelineState

FIXED_FOR_BEAM = "2.77.0"
DEFAULT_PARTITIONS = 8  # a Reshuffle's output partitions when --dask_npartitions is not given


# --- what runs on the workers -------------------------------------------------------------------------------

_DOFNS: dict[str, Any] = {}  # step id -> the DoFn set up in this worker process
_DOFNS_LOCK = threading.Lock()


def _dofn_for(step_id: str, fn: Any) -> Any:
    with _DOFNS_LOCK:
        cached = _DOFNS.get(step_id)
        if cached is None:
            cached = _DOFNS[step_id] = fn
            fn.setup()
        return cached


@atexit.register
def teardown_dofns() -> int:
    """Tear down the DoFns this process set up (called on every worker when a job ends); returns how many."""
    with _DOFNS_LOCK:
        dofns = list(_DOFNS.values())
        _DOFNS.clear()
    for fn in dofns:
        try:
            fn.teardown()
        except Exception:  # noqa: BLE001 - one failing teardown must not keep the others' resources open
            pass
    return len(dofns)


class _Receiver(Receiver):
    def __init__(self, tag: str | None, into: list[tuple[str | None, Any]]):
        self.tag = tag
        self.into = into

    def receive(self, windowed_value: Any) -> None:
        self.into.append((self.tag, windowed_value))


class _Receivers(dict):
    def __init__(self, into: list[tuple[str | None, Any]]):
        super().__init__()
        self.into = into

    def __missing__(self, tag: str | None) -> _Receiver:
        receiver = self[tag] = _Receiver(tag, self.into)
        return receiver


def _run_bundle(items: Iterable[Any], step_id: str, fn: Any, window_fn: Any, label: str, side_inputs: Any,
                args: list[Any], kwargs: dict[str, Any]) -> list[tuple[str | None, Any]]:  # fmt: skip
    """One Dask partition through one DoFn: every output with its tag, `finish_bundle`'s included."""
    from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler

    dofn = _dofn_for(step_id, fn)
    outputs: list[tuple[str | None, Any]] = []
    receivers = _Receivers(outputs)
    handler = _OutputHandler(
        window_fn=window_fn,
        main_receivers=receivers[None],
        tagged_receivers=receivers,
        per_element_output_counter=None,
        output_batch_converter=None,
        process_yields_batches=False,
        process_batch_yields_elements=False,
    )
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(dofn),
        handler,
        context=DoFnContext(label, state=None),
        side_inputs=side_inputs,
        input_args=args,
        input_kwargs=kwargs,
        user_state_context=None,
        bundle_finalizer_param=beam.DoFn.BundleFinalizerParam(),
    )
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(_windowed(item))
    invoker.invoke_finish_bundle()
    return outputs


def _windowed(item: Any) -> Any:
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.windowed_value import WindowedValue

    return item if isinstance(item, WindowedValue) else WindowedValue(item, 0, (GlobalWindow(),))


def _value(item: Any) -> Any:
    return item.value if hasattr(item, "windows") else item


def _of_tag(tag: str | None) -> Any:
    def pick(outputs: Iterable[tuple[str | None, Any]]) -> list[Any]:
        return [value for found, value in outputs if found == tag]

    return pick


def _group(items: Iterable[Any]) -> Iterator[Any]:
    """GroupByKeyOnly in a partition that holds whole keys: (key, [reified windowed values]), windowing kept."""
    groups: dict[Any, list[Any]] = {}
    for item in items:
        key, value = _value(item)
        groups.setdefault(key, []).append(value)
    return iter(groups.items())


def _key_of(item: Any) -> Any:
    return _value(item)[0]


def _batches(keyed: tuple[Any, Iterable[Any]], size: int) -> Iterator[tuple[Any, list[Any]]]:
    key, values = keyed
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield key, batch
            batch = []
    if batch:
        yield key, batch


# --- the translation ------------------------------------------------------------------------------------------


class _GroupIntoBoundedBatches(beam.PTransform):
    """`BatchPerKey` without state: a GroupByKey on the (sharded) keys, each group cut into batches."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return pcoll | beam.GroupByKey() | beam.FlatMap(_batches, self.batch_size)


class _BatchPerKeyOverride(PTransformOverride):
    def matches(self, applied: AppliedPTransform) -> bool:
        from pipeline.io.batching import BatchPerKey

        return isinstance(applied.transform, BatchPerKey)

    def get_replacement_transform_for_applied_ptransform(self, applied: AppliedPTransform) -> beam.PTransform:
        return _GroupIntoBoundedBatches(applied.transform.batch_size)


@dataclasses.dataclass
class _Translator(PipelineVisitor):
    npartitions: int
    bags: dict[AppliedPTransform, Any] = dataclasses.field(default_factory=dict)
    tagged: set[AppliedPTransform] = dataclasses.field(default_factory=set)  # bags of (tag, value) pairs
    consumed: set[AppliedPTransform] = dataclasses.field(default_factory=set)

    def _input_bag(self, pcoll: Any) -> Any:
        producer = pcoll.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if producer in self.tagged:  # a ParDo's bag holds every output with its tag: the main one is None
            tag = next((key for key, value in producer.outputs.items() if value is pcoll), None)
            return bag.map_partitions(_of_tag(None if tag in (None, "None") else tag))
        return bag

    def visit_transform(self, node: AppliedPTransform) -> None:
        import dask.bag as db
        from apache_beam.runners.dask.overrides import _Create, _Flatten, _GroupByKeyOnly, _Reshuffle

        transform = node.transform
        inputs = [pcoll for pcoll in node.inputs if not isinstance(pcoll, beam.pvalue.PBegin)]
        if isinstance(transform, _Create):
            size = max(1, -(-len(transform.values) // self.npartitions))
            self.bags[node] = db.from_sequence(transform.values, partition_size=size)
        elif isinstance(transform, beam.ParDo):
            self._pardo(node, inputs)
        elif isinstance(transform, _GroupByKeyOnly):
            bag = self._input_bag(inputs[0])
            self.bags[node] = bag.groupby(_key_of).map_partitions(
                lambda groups: [(key, [v for item in items for v in [_value(item)[1]]]) for key, items in groups]
            )
        elif isinstance(transform, _Flatten):
            self.bags[node] = db.concat([self._input_bag(pcoll) for pcoll in inputs])
        elif isinstance(transform, _Reshuffle):
            self.bags[node] = self._input_bag(inputs[0]).repartition(npartitions=self.npartitions)
        elif inputs:  # a composite's placeholder, or a transform with nothing to do here: the identity
            self.bags[node] = self._input_bag(inputs[0])
        else:
            raise NotImplementedError(f"the Dask translation has no source for {transform.label!r}")

    def _pardo(self, node: AppliedPTransform, inputs: list[Any]) -> None:
        from apache_beam.transforms.sideinputs import SideInputMap

        transform = node.transform
        main = inputs[0]
        window_fn = main.windowing.windowfn if hasattr(main, "windowing") else None
        args, kwargs = transform.raw_side_inputs
        side_inputs = []
        for side in node.side_inputs:
            values = self._input_bag(side.pvalue).map(_windowed).compute()
            side_inputs.append(SideInputMap(type(side), side._view_options(), _Materialised(values)))
        self.bags[node] = self._input_bag(main).map_partitions(
            _run_bundle,
            uuid.uuid4().hex,
            transform.fn,
            window_fn,
            transform.label,
            side_inputs,
            list(args),
            dict(kwargs),
        )
        self.tagged.add(node)

    def job(self) -> Any:
        """One bag that depends on every leaf: computed once, every branch runs, no shared step runs twice."""
        import dask.bag as db

        leaves = [bag for node, bag in self.bags.items() if node not in self.consumed]
        return db.concat([leaf.map_partitions(_nothing) for leaf in leaves])


def _nothing(_outputs: Iterable[Any]) -> list[Any]:
    return []


@dataclasses.dataclass
class _Materialised:
    values: list[Any]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)


# --- the runner and its result --------------------------------------------------------------------------------


def _local_counts() -> dict[str, int]:
    from transforms.common import local_counts

    return local_counts()


def _reset_counts() -> None:
    from transforms.common import reset_local_counts

    reset_local_counts()


class _Counters:
    def __init__(self, totals: dict[str, int]):
        self._totals = totals

    def query(self, _filter: Any = None) -> dict[str, list[MetricResult]]:
        from core.names import METRICS_NAMESPACE

        counters = [
            MetricResult(MetricKey("dask", MetricName(METRICS_NAMESPACE, name)), value, value)
            for name, value in self._totals.items()
        ]
        return {"counters": counters, "distributions": [], "gauges": []}


class DaskJobResult(PipelineResult):
    def __init__(self, client: Any, futures: list[Any], own_cluster: Any = None):
        super().__init__(PipelineState.RUNNING)
        self._client = client
        self._futures = futures
        self._cluster = own_cluster
        self._totals: dict[str, int] = {}

    def wait_until_finish(self, duration: int | None = None) -> str:
        import dask.distributed as ddist

        try:
            for _ in ddist.as_completed(self._futures, with_results=True):
                pass  # gathering raises a worker's error here
            self._state = PipelineState.DONE
        except Exception:
            self._state = PipelineState.FAILED
            raise
        finally:
            self._finish()
        return self._state

    def _finish(self) -> None:
        if self._client is None:
            return
        for counts in self._client.run(_local_counts).values():
            for name, value in counts.items():
                self._totals[name] = self._totals.get(name, 0) + value
        self._client.run(teardown_dofns)  # the steps' stores, pools and agents, closed on every worker
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = None

    def cancel(self) -> str:
        if self._client is not None:
            self._client.cancel(self._futures)
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> _Counters:
        return _Counters(self._totals)


class NightwatchDaskRunner(beam.runners.runner.PipelineRunner):
    """`--runner=pipeline.runners.dask.runner.NightwatchDaskRunner` with Beam's Dask options
    (`--dask_client_address=HOST:PORT`, `--dask_npartitions=N`); without an address, a local cluster of
    `--direct_num_workers` worker processes (default 2) is started for the job and closed after it."""

    def run_pipeline(self, pipeline: beam.Pipeline, options: Any) -> DaskJobResult:
        import apache_beam
        import dask.distributed as ddist
        from apache_beam.options.pipeline_options import DirectOptions
        from apache_beam.runners.dask.dask_runner import DaskOptions
        from apache_beam.runners.dask.overrides import dask_overrides

        if apache_beam.__version__ != FIXED_FOR_BEAM:
            raise RuntimeError(
                f"the Dask translation (pipeline/runners/dask) was written for apache-beam {FIXED_FOR_BEAM}, "
                f"not {apache_beam.__version__}: review it against this Beam first"
            )
        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        partitions = dask_options.pop("npartitions", None) or DEFAULT_PARTITIONS
        dask_options.pop("partition_size", None)
        cluster = None
        if not dask_options.get("address") and not dask_options.get("scheduler_file"):
            workers = options.view_as(DirectOptions).direct_num_workers or 2
            cluster = ddist.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            dask_options["address"] = cluster.scheduler_address
        client = ddist.Client(**dask_options)
        client.run(_reset_counts)
        pipeline.replace_all([_BatchPerKeyOverride(), *dask_overrides()])
        translator = _Translator(partitions)
        pipeline.visit(translator)
        return DaskJobResult(client, [client.compute(translator.job())], cluster)
