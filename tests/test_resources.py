"""Per-process resources: one engine per store URL per process, configuration slices, the events' coder."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from config.settings import NightwatchConfig
from core.event import Event
from pipeline.graph import build_pipeline, read_packets
from pipeline.io.sinks import _DeadLetterWriter, _HotStoreWriter
from store import hot
from store.layout import Outputs
from tests.test_transforms import optical
from transforms.agents import AgentsDoFn
from transforms.classify import ClassifyDoFn
from transforms.filter import FilterDoFn
from transforms.notify import _NotifyDoFn


def test_many_store_steps_share_one_engine_per_url_in_a_process(config, store, tmp_path):
    """Every store-touching step on a worker (sinks, live thresholds, notify, the history agent) holds the one
    engine of its URL: many instances (threads x steps, as on a Dataflow worker) make one pool, not one each."""
    other = hot.sqlite_url(tmp_path / "other.db")
    steps = []
    for _ in range(8):
        steps += [
            _HotStoreWriter(store.url, "events"),
            _DeadLetterWriter(store.url, str(tmp_path)),
            FilterDoFn(config, db_url=store.url),
            ClassifyDoFn(config, db_url=store.url),
            _NotifyDoFn(config, store.url),
            AgentsDoFn(config, store.url),  # the history agent reads the store
            _HotStoreWriter(other, "alerts"),
        ]
    for step in steps:
        step.setup()
    try:
        engines = {url: engine for url, (engine, _) in hot._engines.items() if url in (store.url, other)}
        assert set(engines) == {store.url, other}  # one engine per URL in this process
        holders = {url: count for url, (_, count) in hot._engines.items()}
        assert holders[other] == 8
        assert holders[store.url] >= 6 * 8  # every instance took a reference to the same engine
    finally:
        for step in steps:
            step.teardown()
    # The last holder gave it back: the engine and its pool are disposed, not left to the garbage collector.
    assert other not in hot._engines
    assert hot._engines.get(store.url, (None, 0))[1] <= 1  # only the fixture's own store still holds it


def _dofns(pipeline: beam.Pipeline) -> list[beam.DoFn]:
    found = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.ParDo):
                found.append(node.transform.fn)

    pipeline.visit(Visitor())
    return found


def test_each_step_carries_only_the_configuration_it_reads(config, tmp_path):
    """No DoFn of the batch graph pickles the whole NightwatchConfig into itself."""
    p = beam.Pipeline(options=PipelineOptions(runner="FnApiRunner"))
    build_pipeline(read_packets(p, None, 10), config, Outputs.under(str(tmp_path), None), "run-slices")
    dofns = _dofns(p)
    assert len(dofns) > 15
    carrying = {type(fn).__name__ for fn in dofns if any(isinstance(v, NightwatchConfig) for v in vars(fn).values())}
    # Routing and notifying read the whole configuration in force (store/configs.py: the console's documents over
    # the files), so they carry the files' version as the base it is read over; every other step carries its slice.
    assert carrying <= {"RouteDoFn", "_NotifyDoFn", "_PendingDoFn"}
    assert {"DecodeDoFn", "FilterDoFn", "ClassifyDoFn", "AgentsDoFn"} <= {type(fn).__name__ for fn in dofns}
    from apache_beam.internal import pickler

    sizes = {type(fn).__name__: len(pickler.dumps(fn)) for fn in dofns if type(fn).__name__ not in carrying}
    assert len(pickler.dumps(config)) > 2 * max(sizes.values())


def test_events_have_a_registered_deterministic_coder():
    coder = beam.coders.registry.get_coder(Event)
    assert type(coder).__name__ == "EventCoder" and coder.is_deterministic()
    event = optical(raw=b"\x00raw bytes\xff", enrichments={"b": {"x": 1}, "a": {"y": [1, 2]}})
    encoded = coder.encode(event)
    assert coder.decode(encoded) == event
    assert b"raw bytes" in encoded and b"cloudpickle" not in encoded and b"pydantic" not in encoded
    # The same event built with its mappings in another order encodes to the same bytes (usable as a key).
    reordered = event.model_copy(update={"enrichments": {"a": {"y": [1, 2]}, "b": {"x": 1}}})
    assert coder.encode(reordered) == encoded
