"""The pipeline graph: sources -> decode -> filter -> classify -> route -> agents -> sinks -> association.

`ProcessPackets` is the one composite every mode applies to its packets (batch files or the simulator, the
streaming job's subscriptions, a replay of the archive), association included, under stable labels: the same
packets give the same classes, links and alerts whichever way they arrive. `build_pipeline` applies it and
returns the PCollections a run or a test looks at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam

from config.limits import InputLimits
from config.settings import NightwatchConfig
from core import names
from core.decisions import DESTINATIONS
from core.event import Event
from pipeline.io.sinks import WriteDeadLetters, WriteHotTable, WriteTier
from pipeline.io.sources import ReadPacketFiles, SimulatedPackets
from store.layout import Outputs
from transforms.agents import AGENT_CALLS, AdviseRaised, AgentMetrics, RunAgents
from transforms.associate import AssociateSources
from transforms.classify import Classify
from transforms.common import DEAD_LETTER, counter
from transforms.decode import DecodePackets
from transforms.filter import ApplyQualityCuts
from transforms.notify import NotifyAlerts
from transforms.route import Dispatch, Route

PIPELINE_VERSION = "0.1.0"


@dataclass
class Graph:
    """The PCollections a run (or a test) looks at."""

    decoded: beam.PCollection  # every decoded event, duplicates included
    decode_failures: beam.PCollection  # packets that could not be decoded
    routed: beam.PCollection  # every routed event, enriched by the agents
    destinations: dict[str, beam.PCollection]
    stored: beam.PCollection  # events newly stored in the hot store
    new_alerts: beam.PCollection  # alerts newly stored
    dead_letters: beam.PCollection
    warm_files: beam.PCollection
    archive_files: beam.PCollection
    agent_metrics: beam.PCollection  # agent metric rows written
    notified: beam.PCollection | None = None  # first deliveries of the new alerts (ops/notify.py)
    raised: beam.PCollection | None = None  # events an association raised to a new or higher alert


def read_packets(
    p: beam.Pipeline,
    input_glob: str | None,
    simulate: int,
    injected: bool = False,
    limits: InputLimits | None = None,
    **simulator: object,
) -> beam.PCollection:
    if input_glob:
        return p | "ReadPackets" >> ReadPacketFiles(input_glob, injected, limits)
    if simulate > 0:
        return p | "ReadPackets" >> SimulatedPackets(simulate, **simulator)
    raise ValueError("give --input GLOB or --simulate N")


def _archived_only(event: Event) -> Iterator[Event]:
    if event.event_class == "rejected":
        counter(names.ARCHIVE_REJECTED_SKIPPED).inc()  # counted, so a drain knows they will not reach the archive
        return
    yield event


def _science_only(event: Event) -> Iterator[Event]:
    if event.injected:
        counter(names.TIERS_INJECTED_SKIPPED).inc()  # counted, so a drain knows they will not reach the tiers
        return
    yield event


class ProcessPackets(beam.PTransform):
    """Packets in (bounded, or unbounded if streaming); everything stored, associated and notified.

    After `expand`, `graph` holds the PCollections a run or a test looks at. Association is the keyed stateful
    step when streaming; a bounded run groups by sky cell instead (the same rules, the same links): on the
    FnApiRunner a cell's growing bag state costs more per element the more it holds (measured: 1,000 optical
    events in one cell took 33 CPU s, 2,000 more than twice that), and a runner without user state (the
    DaskRunner) needs the grouped form anyway. `grouped_association=True` forces it when streaming too.
    """

    def __init__(
        self,
        config: NightwatchConfig,
        outputs: Outputs,
        run_id: str,
        streaming: bool = False,
        grouped_association: bool = False,
    ):
        super().__init__()
        self._config = config
        self._outputs = outputs
        self._run_id = run_id
        self._streaming = streaming
        self._grouped = grouped_association
        self.graph: Graph | None = None

    def expand(self, packets: beam.PCollection) -> beam.PCollection:
        graph = _process(packets, self._config, self._outputs, self._run_id, self._streaming)
        grouped = self._grouped or not self._streaming
        raised = (
            graph.stored
            | "Associate" >> AssociateSources(self._config, self._outputs.db_url, grouped)
            | "RaisedUnwindowed" >> beam.WindowInto(beam.window.GlobalWindows())
            # A raised alert gets the agents of its new class (the follow-up agent's advice) like any other alert.
            | "AdviseRaised" >> AdviseRaised(self._config, self._outputs.db_url)
        )
        # An alert created or raised by an association is notified too (its new level is a new delivery).
        raised | "NotifyRaised" >> NotifyAlerts(self._config, self._outputs.db_url)
        graph.raised = raised
        self.graph = graph
        return graph.stored


def build_pipeline(
    packets: beam.PCollection,
    config: NightwatchConfig,
    outputs: Outputs,
    run_id: str,
    streaming: bool = False,
    grouped_association: bool = False,
) -> Graph:
    """Apply `ProcessPackets` to a PCollection of packets; return its PCollections."""
    process = ProcessPackets(config, outputs, run_id, streaming, grouped_association)
    packets | "ProcessPackets" >> process
    assert process.graph is not None  # set by expand
    return process.graph


def _process(
    packets: beam.PCollection, config: NightwatchConfig, outputs: Outputs, run_id: str, streaming: bool = False
) -> Graph:
    """Attach the processing steps and sinks to a PCollection of packets (bounded, or unbounded if streaming)."""
    decoded = packets | "Decode" >> DecodePackets(config)
    # Cuts and rules come from the hot store when an operator has published a live version.
    refresh_s = config.streaming.thresholds.refresh_s
    filtered = decoded.events | "Filter" >> ApplyQualityCuts(config, db_url=outputs.db_url, refresh_s=refresh_s)
    classified = filtered.events | "Classify" >> Classify(config, db_url=outputs.db_url, refresh_s=refresh_s)
    # The configuration in force (the console's documents over the files) is re-read live too: see store/configs.py.
    routed = classified.events | "Route" >> Route(config, run_id, PIPELINE_VERSION, outputs.db_url, refresh_s)
    enriched = routed.events | "Agents" >> RunAgents(config, outputs.db_url)
    agent_metrics = enriched[AGENT_CALLS] | "AgentMetrics" >> AgentMetrics(
        outputs.db_url, run_id, config.streaming.windows.metrics_s
    )
    dispatched = enriched.events | "Dispatch" >> Dispatch()

    stored = dispatched.events | "StoreEvents" >> WriteHotTable(outputs.db_url, names.EVENTS)
    alerts = dispatched.alerts | "StoreAlerts" >> WriteHotTable(outputs.db_url, names.ALERTS)
    review = dispatched.review | "StoreReviewQueue" >> WriteHotTable(outputs.db_url, names.REVIEW)
    # Once stored, each new alert goes out on its level's channels (short timeouts; failures become retries).
    notified = alerts.stored | "Notify" >> NotifyAlerts(config, outputs.db_url)
    # Tiers are batched per partition on sharded keys (bounded files, no hot key), in the events' own time.
    spec = config.streaming.windows
    tier_batching = {
        "batch_max": spec.tier_batch_max,
        "shards": spec.tier_shards,
        "buffering_s": spec.tier_batch_s if streaming else None,
    }
    # Injected events (the injection test, the canary) never enter the science tiers; the hot store keeps them,
    # flagged, for the test's report.
    science = dispatched.events | "ScienceOnly" >> beam.FlatMap(_science_only)
    # The warm tier keeps no raw packet: dropping it before the tier's grouping halves what is held and moved.
    # (A failed warm write dead-letters the event without its bytes; the archive write carries them.)
    without_raw = science | "WarmWithoutRaw" >> beam.Map(lambda event: event.model_copy(update={"raw": b""}))
    warm = without_raw | "WriteWarm" >> WriteTier(outputs.warm_root, names.WARM, **tier_batching)
    # The retention table never archives rejected events (their bad packets are in the dead-letter store).
    archived = science | "ArchiveNoRejected" >> beam.FlatMap(_archived_only)
    archive = archived | "WriteArchive" >> WriteTier(outputs.archive_root, names.ARCHIVE, **tier_batching)

    steps = (decoded, filtered, classified, routed, dispatched, stored, alerts, review)
    failures = [step[DEAD_LETTER] for step in steps]
    failures += [
        tier[DEAD_LETTER] | f"{name}FailuresUnwindowed" >> beam.WindowInto(beam.window.GlobalWindows())
        for name, tier in (("Warm", warm), ("Archive", archive))
    ]
    dead_letters = (
        failures
        | "CollectDeadLetters" >> beam.Flatten()
        | "StoreDeadLetters" >> WriteDeadLetters(outputs.db_url, outputs.dead_letter_root, run_id)
    )
    return Graph(
        decoded=decoded.events,
        decode_failures=decoded[DEAD_LETTER],
        routed=dispatched.events,
        destinations={name: dispatched[name] for name in DESTINATIONS},
        stored=stored.stored,
        new_alerts=alerts.stored,
        dead_letters=dead_letters,
        warm_files=warm.files,
        archive_files=archive.files,
        agent_metrics=agent_metrics,
        notified=notified,
    )
