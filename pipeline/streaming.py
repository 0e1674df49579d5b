"""The streaming job: Pub/Sub in, the same processing graph, metrics, association, alerts out.

Locally it runs on the BundleBasedDirectRunner against the Pub/Sub emulator; in production on Dataflow
(Pub/Sub native) or Flink. `run_stream` runs it for a while or until SIGINT/SIGTERM, then drains:
the reader stops pulling (what it has not pulled stays on the subscription), the job finishes what is in
flight and lets its last windows close, then it is cancelled. Redelivered packets are stored once: every
sink is idempotent on ids.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from config.limits import file_mode
from config.settings import NightwatchConfig, PubSubSpec
from core import names
from core.event import Event, Packet, utcnow
from core.logs import log_event
from core.names import ATTR_DEDUP_KEY, ATTR_INJECTED, ATTR_SOURCE
from ops import intake
from ops.workers import Heartbeat
from pipeline.graph import PIPELINE_VERSION, Graph, build_pipeline
from pipeline.runners.local.dofns import reuse_local_dofns
from pipeline.runners.local.reader import (
    MAX_IN_FLIGHT,
    PULL_TIMEOUT_S,
    limit_in_flight,
    pause_reading,
    pause_subscriptions,
    resume_reading,
    tune_local_reader,
)
from store.configs import in_force
from store.events import alert_id_for
from store.hot import HotStore
from store.layout import Outputs
from transforms.agents import AdviseRaised
from transforms.associate import AssociateSources
from transforms.common import counter, local_counts, reset_local_counts
from transforms.metrics import (
    WATERMARK_MARGIN_S,
    WindowedMetrics,
    alert_sample,
    dead_letter_sample,
    received_sample,
    stored_sample,
)
from transforms.notify import NotifyAlerts

log = logging.getLogger("nightwatch.stream")


def message_to_packet(message: PubsubMessage, source: str) -> Packet:
    return Packet(
        payload=message.data,
        origin=f"pubsub:{source}:{message.message_id or uuid.uuid4().hex}",
        source_hint=message.attributes.get(ATTR_SOURCE, source),
        received_time=utcnow(),
        published_time=message.publish_time,
        injected=message.attributes.get(ATTR_INJECTED) == "true",
    )


class _CountIngested(beam.DoFn):
    """Counts packets as they enter the job: what draining waits on."""

    def process(self, item: tuple[Packet, dict[str, str]]) -> Iterator[Packet]:
        counter(names.INGESTED).inc()
        yield item[0]


def _read_source(p: beam.Pipeline, spec: PubSubSpec, project: str, source: str) -> beam.PCollection:
    subscription = f"projects/{project}/subscriptions/{spec.subscription(source)}"
    return (
        p
        | f"Read{source.capitalize()}"
        >> ReadFromPubSub(
            subscription=subscription, with_attributes=True, timestamp_attribute=spec.event_time_attribute
        )
        | f"ToPacket{source.capitalize()}"
        >> beam.Map(lambda message, src=source: (message_to_packet(message, src), dict(message.attributes)))
    )


def kafka_sources(spec: PubSubSpec, bootstrap: str) -> dict[str, Any]:
    """Beam's cross-language Kafka reads, one per source topic (same topic names as on Pub/Sub).

    Constructing them checks their configuration; applying them needs Java and the expansion service.
    """
    from apache_beam.io.kafka import ReadFromKafka

    return {
        source: ReadFromKafka(
            consumer_config={
                "bootstrap.servers": bootstrap,
                "group.id": "nightwatch-pipeline",
                "auto.offset.reset": "earliest",
            },
            topics=[topic],
            timestamp_policy=ReadFromKafka.create_time_policy,
            commit_offset_in_finalize=True,
        )
        for source, topic in spec.topics.items()
    }


def _read_kafka(p: beam.Pipeline, source: str, read: Any) -> beam.PCollection:
    def to_packet(record: tuple[bytes, bytes]) -> tuple[Packet, dict[str, str]]:
        packet = Packet(payload=record[1], origin=f"kafka:{source}:{uuid.uuid4().hex}", source_hint=source)
        return packet, {ATTR_SOURCE: source}

    return p | f"Read{source.capitalize()}" >> read | f"ToPacket{source.capitalize()}" >> beam.Map(to_packet)


def alert_message(event: Event) -> PubsubMessage:
    """An alert as a message: JSON body, the dedup key (stable per event) and the level as attributes."""
    body = {
        "alert_id": alert_id_for(event.event_id),
        "level": event.alert_level,
        "event": event.summary_dict(),
    }
    attributes = {
        ATTR_DEDUP_KEY: alert_id_for(event.event_id),
        "level": event.alert_level or "",
        "source": event.source,
        "injected": str(event.injected).lower(),
    }
    return PubsubMessage(json.dumps(body, default=str).encode(), attributes)


@dataclass
class StreamingGraph:
    core: Graph
    metrics: beam.PCollection
    raised: beam.PCollection


def build_streaming_pipeline(
    p: beam.Pipeline,
    config: NightwatchConfig,
    outputs: Outputs,
    run_id: str,
    project: str,
    kafka: dict[str, Any] | None = None,
) -> StreamingGraph:
    """The streaming graph; sources are Pub/Sub subscriptions, or the given Kafka reads (Flink)."""
    spec = config.streaming.pubsub
    if kafka is None:
        reads = [_read_source(p, spec, project, source) for source in spec.topics]
    else:
        reads = [_read_kafka(p, source, read) for source, read in kafka.items()]
    packets = reads | "AllSources" >> beam.Flatten() | "Ingest" >> beam.ParDo(_CountIngested())
    core = build_pipeline(packets, config, outputs, run_id, streaming=True)

    raised = (
        core.stored
        | "Associate" >> AssociateSources(config, outputs.db_url)
        | "RaisedUnwindowed" >> beam.WindowInto(beam.window.GlobalWindows())
        # A raised alert gets the agents of its new class (the follow-up agent's advice) like any other alert.
        | "AdviseRaised" >> AdviseRaised(config, outputs.db_url)
    )
    # An alert created or raised by an association is notified too (its new level is a new delivery).
    raised | "NotifyRaised" >> NotifyAlerts(config, outputs.db_url)
    samples = [
        core.decoded | "ReceivedEvents" >> beam.Map(received_sample),
        core.decode_failures | "ReceivedUndecodable" >> beam.Map(received_sample),
        core.stored | "StoredEvents" >> beam.Map(stored_sample),
        core.new_alerts | "NewAlerts" >> beam.Map(alert_sample),
        core.dead_letters | "DeadLetters" >> beam.Map(dead_letter_sample),
    ]
    metrics = samples | "AllSamples" >> beam.Flatten() | "Metrics" >> WindowedMetrics(config, outputs.db_url, run_id)

    alerts_topic = f"projects/{project}/topics/{spec.alerts_topic}"
    (
        [core.new_alerts, raised]
        | "AlertsOut" >> beam.Flatten()
        | "ToMessage" >> beam.Map(alert_message)
        | "PublishAlerts" >> WriteToPubSub(alerts_topic, with_attributes=True)
    )
    return StreamingGraph(core=core, metrics=metrics, raised=raised)


def streaming_options(argv: list[str], project: str) -> PipelineOptions:
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    standard.streaming = True
    if not standard.runner:
        # The in-process streaming runner; the plain DirectRunner would first try to download Prism.
        standard.runner = "BundleBasedDirectRunner"
    google = options.view_as(GoogleCloudOptions)
    google.project = google.project or project
    return options


class _Stop:
    """Set by SIGINT/SIGTERM or the end of the planned duration."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def __call__(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name
        self.event.set()


class _InFlightLimit:
    """True while more than `limit` packets are in flight and the job is making progress on them.

    If nothing moves for `stall_s` the reader is let go again: a gap in the tally must never stop a job.
    """

    def __init__(self, limit: int, stall_s: float = 10.0):
        self.limit = limit
        self.stall_s = stall_s
        self._last: int | None = None
        self._moved = time.monotonic()

    def __call__(self) -> bool:
        now = _in_flight(local_counts())
        if now != self._last:
            self._last, self._moved = now, time.monotonic()
        return now > self.limit and time.monotonic() - self._moved < self.stall_s


class IdleClock:
    """Whether a job has been idle for `idle_s`: nothing pulled, stored or dead-lettered for that long.

    Only a job with nothing to do is idle. A job busy with what it pulled (a slow bundle, agents at their budget)
    pulls nothing new for a while, but its other counters move: judging by the pulled count alone drained a job
    that had a backlog waiting on its subscriptions. A paused intake is not idleness either.
    """

    def __init__(self, idle_s: float | None, now: float):
        self.idle_s = idle_s
        self._seen: dict[str, int] | None = None
        self._changed = now

    def idle(self, counts: dict[str, int], paused: bool, now: float) -> bool:
        if paused or counts != self._seen:
            self._seen, self._changed = dict(counts), now
            return False
        return bool(self.idle_s) and now - self._changed >= self.idle_s


def _in_flight(counts: dict[str, int]) -> int:
    """Packets let in but not yet stored or dead-lettered, plus routed events not yet in both tiers."""
    finished = names.total(counts, names.stored)
    finished += sum(counts.get(names.dead_letters(stage), 0) for stage in names.LOSING_STAGES)
    undecoded = counts.get(names.INGESTED, 0) - counts.get(names.PACKETS, 0)
    routed = names.total(counts, names.routed)
    science = routed - counts.get(names.TIERS_INJECTED_SKIPPED, 0)  # injected events never go to the tiers
    tiers = sum(science - counts.get(names.handled(tier), 0) for tier in names.TIERS)
    tiers -= counts.get(names.ARCHIVE_REJECTED_SKIPPED, 0)  # rejected events never go to the archive
    return counts.get(names.RECEIVED, 0) - finished + undecoded + tiers


def run_stream(*args: Any, **kwargs: Any) -> tuple[dict[str, int], dict[str, Any]]:
    """`_run_stream` with everything it writes created with the configured file mode (owner-only by default)."""
    config = kwargs["config"] if "config" in kwargs else args[1]
    with file_mode(config.limits.files):
        return _run_stream(*args, **kwargs)


def _run_stream(
    argv: list[str],
    config: NightwatchConfig,
    outputs: Outputs,
    project: str,
    duration_s: float | None,
    run_id: str | None = None,
    on_progress: Any = None,
    drain_timeout_s: float = 120.0,
    started: threading.Event | None = None,
    stop: threading.Event | None = None,
    drain_windows: bool = True,
    idle_s: float | None = None,
    on_drain: Any = None,
) -> tuple[dict[str, int], dict[str, Any]]:
    """Run the streaming job until `duration_s` passes, `stop` is set, SIGINT/SIGTERM, or (with `idle_s`) no
    packet has come in for that long; then drain. `on_drain` is called as draining begins.

    Returns the job's counters and what happened (run id, times, drain outcome).
    """
    run_id = run_id or f"stream-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    # The configuration in force at the start (the console's documents over the files); steps re-read it live.
    config = in_force(config, store)
    reset_local_counts()
    stopper = _Stop()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, stopper) for sig in (signal.SIGINT, signal.SIGTERM)}
    began = utcnow()
    options = streaming_options(argv, project)
    local = options.view_as(StandardOptions).runner == "BundleBasedDirectRunner"
    if local:
        tune_local_reader()
        limit_in_flight(_InFlightLimit(MAX_IN_FLIGHT))
    resume_reading()
    p = beam.Pipeline(options=options)
    build_streaming_pipeline(p, config, outputs, run_id, project)
    local_runner = contextlib.ExitStack()
    if local:
        local_runner.enter_context(reuse_local_dofns())
    result = p.run()
    intake_poll = _IntakePoll(store, config, project, local)
    heartbeat = Heartbeat(outputs.db_url, "stream", lambda: _beat_sample(intake_poll), run_id)
    heartbeat.__enter__()
    log_event(log, "run_start", f"streaming run {run_id} started", run_id=run_id, mode="streaming", project=project)
    if started is not None:
        started.set()
    deadline = time.monotonic() + duration_s if duration_s else None
    idle = IdleClock(idle_s, time.monotonic())
    # The BundleBasedDirectRunner reports only the first bundles of a running job in its metrics; the job runs
    # in this process, so progress, draining and the summary use the process's own exact tally.
    try:
        while not stopper.event.is_set() and not (stop is not None and stop.is_set()):
            if deadline is not None and time.monotonic() >= deadline:
                stopper.reason = "duration reached"
                break
            time.sleep(1.0)
            intake_poll()
            counts = local_counts()
            if idle.idle(counts, intake_poll.paused, time.monotonic()):
                stopper.reason = f"idle for {idle_s:.0f} s"
                break
            if on_progress:
                on_progress(counts)
        stopper.reason = stopper.reason or "stopped"
        log_event(
            log,
            "drain",
            f"draining ({stopper.reason}): no new packets in, finishing what is in flight",
            run_id=run_id,
            reason=stopper.reason,
        )
        if on_drain:
            on_drain()
        intake_poll.state = "draining"
        pause_reading()
        closed_at = time.monotonic()
        time.sleep(PULL_TIMEOUT_S + 0.5)  # a pull in flight when the pause began delivers, and is finished too
        drained = _wait_until_drained(drain_timeout_s)
        if drained and drain_windows:
            # Let the event-time windows holding the last packets close and write their metrics.
            window_s = config.streaming.windows.metrics_s
            time.sleep(max(0.0, closed_at + window_s + 2 * WATERMARK_MARGIN_S - time.monotonic()))
    finally:
        result.cancel()
        local_runner.close()
        limit_in_flight(None)
        resume_reading()
        pause_subscriptions(set())
        heartbeat.__exit__(None, None, None)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counts = local_counts()
    store.record_run(run_id, began, utcnow(), {"counters": counts, "drained": drained, "mode": "streaming"})
    store.close()
    log_event(
        log,
        "run_end",
        f"streaming run {run_id} stopped ({stopper.reason}): received {counts.get(names.RECEIVED, 0)}, "
        f"dead letters {counts.get(names.DEAD_LETTERS, 0)}, drained {drained}",
        run_id=run_id,
        mode="streaming",
        reason=stopper.reason,
        received=counts.get(names.RECEIVED, 0),
        dead_letters=counts.get(names.DEAD_LETTERS, 0),
        drained=drained,
    )
    return counts, {
        "run_id": run_id,
        "started_at": began.isoformat(),
        "stopped_because": stopper.reason,
        "drained": drained,
        "pipeline_version": PIPELINE_VERSION,
    }


class _IntakePoll:
    """Reads `intake_state` every `intake.POLL_S` and pauses the readers of the paused sources (local runner).

    On a production runner there is no in-job pause: the job logs that a pause was asked for and how to do it
    there (drain / stop with savepoint)."""

    def __init__(self, store: HotStore, config: NightwatchConfig, project: str, local: bool):
        self._store = store
        self._spec = config.streaming.pubsub
        self._project = project
        self._local = local
        self._sources = tuple(config.streaming.pubsub.topics)
        self._next = 0.0
        self.paused: set[str] = set()
        self.state = "running"

    def __call__(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + intake.POLL_S
        try:
            paused = intake.paused_sources(self._store, self._sources)
        except Exception as exc:  # noqa: BLE001 - an unreadable state keeps the last one; the job goes on
            log.warning("intake state not read: %s", exc)
            return
        if paused != self.paused:
            log.info("intake %s", f"paused: {', '.join(sorted(paused))}" if paused else "resumed: every source")
            if paused and not self._local:
                log.warning("intake pause asked for on a production runner: %s", intake.PRODUCTION)
        self.paused = paused
        pause_subscriptions({self.subscription(source) for source in paused})

    def subscription(self, source: str) -> str:
        return f"projects/{self._project}/subscriptions/{self._spec.subscription(source)}"


def _beat_sample(poll: _IntakePoll) -> dict[str, Any]:
    counts = local_counts()
    state = poll.state if poll.state != "running" else ("paused" if poll.paused else "running")
    return {
        "state": state,
        "processed": names.total(counts, names.stored),
        "errors": counts.get(names.DEAD_LETTERS, 0),
        "backlog": _in_flight(counts),
        "received": counts.get(names.RECEIVED, 0),
        "paused_sources": sorted(poll.paused),
    }


def _wait_until_drained(timeout_s: float, settle_s: float = 3.0) -> bool:
    """Wait until every packet let in is stored or dead-lettered, and no new one arrives for `settle_s`."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        counts = local_counts()
        snapshot = (counts.get(names.INGESTED, 0), counts.get(names.RECEIVED, 0), _in_flight(counts))
        if snapshot != last:
            last, stable_since = snapshot, time.monotonic()
        elif snapshot[2] == 0 and time.monotonic() - stable_since >= settle_s:
            return True
        time.sleep(0.5)
    log.warning("drain timed out after %.0f s with %s packets in flight", timeout_s, last[2] if last else "?")
    return False
