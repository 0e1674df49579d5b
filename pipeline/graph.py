"""The pipeline graph: sources -> decode -> filter -> classify -> route -> agents -> sinks.

`build_pipeline` only assembles the graph, so tests build the real thing and assert on its outputs.
"""

from __future__ import annotations

import time
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
from transforms.agents import AGENT_CALLS, AgentMetrics, RunAgents
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


class _AtProcessingTime(beam.DoFn):
    """Stamps an element with the wall clock: tier files are partitioned by night and class, not by window,
    so a streaming write only needs a window to batch in, and a wall-clock window never sees late data."""

    def process(self, element: object):
        yield beam.window.TimestampedValue(element, time.time())


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


def _tier_input(routed: beam.PCollection, streaming: bool, batch_s: int, label: str) -> beam.PCollection:
    if not streaming:
        return routed
    return (
        routed
        | f"{label}AtProcessingTime" >> beam.ParDo(_AtProcessingTime())
        | f"{label}Batches" >> beam.WindowInto(beam.window.FixedWindows(batch_s))
    )


def build_pipeline(
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
    batch_s = config.streaming.windows.tier_batch_s
    # Injected events (the injection test, the canary) never enter the science tiers; the hot store keeps them,
    # flagged, for the test's report.
    science = dispatched.events | "ScienceOnly" >> beam.FlatMap(_science_only)
    # The warm tier keeps no raw packet: dropping it before the tier's grouping halves what is held and moved.
    # (A failed warm write dead-letters the event without its bytes; the archive write carries them.)
    without_raw = science | "WarmWithoutRaw" >> beam.Map(lambda event: event.model_copy(update={"raw": b""}))
    warm = _tier_input(without_raw, streaming, batch_s, "Warm") | "WriteWarm" >> WriteTier(
        outputs.warm_root, names.WARM
    )
    # The retention table never archives rejected events (their bad packets are in the dead-letter store).
    archived = science | "ArchiveNoRejected" >> beam.FlatMap(_archived_only)
    archive = _tier_input(archived, streaming, batch_s, "Archive") | "WriteArchive" >> WriteTier(
        outputs.archive_root, names.ARCHIVE
    )

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
