"""The guide's monitoring metrics per source, in event-time windows, written to the hot store.

Event rate (and its deviation from the expected rate), processing latency p50/p95/p99 (publish to sink),
queue depth, error rate (dead-lettered / received) and alert volume. Late data: a window re-fires for
packets up to the allowed lateness late (the row is replaced); packets later still are counted in the
window they arrive in, flagged late. Nothing late is dropped without being counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Timestamp

from config.settings import NightwatchConfig, StreamingConfig
from core import names, telemetry
from core.event import DeadLetter, Event, utcnow
from core.night import observing_night
from ops.queue_depth import QueueDepth, queue_depth_reader
from store.configs import LiveConfig
from transforms.common import counter
from transforms.hotstore import HotStoreDoFn

# How far behind the wall clock the local watermark may be before a window is treated as closed.
WATERMARK_MARGIN_S = 5.0


class Sample(NamedTuple):
    """One observation for the metrics: a packet received, an event stored, a dead letter, an alert."""

    source: str
    kind: str  # received | stored | dead_letter | alert
    arrived: float  # unix seconds when the pipeline saw it
    latency_s: float | None = None  # publish to sink, for stored events
    stage: str | None = None  # where a dead letter comes from


def _unix(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def received_sample(item: Event | DeadLetter) -> beam.window.TimestampedValue:
    at = getattr(item, "event_time", None) or item.received_time
    sample = Sample(item.source, "received", item.received_time.timestamp())
    return window.TimestampedValue(sample, at.timestamp())


def stored_sample(event: Event) -> beam.window.TimestampedValue:
    stored = _unix(event.stored_time) or time.time()
    published = _unix(event.published_time) or event.received_time.timestamp()
    sample = Sample(event.source, "stored", stored, max(0.0, stored - published))
    return window.TimestampedValue(sample, event.event_time.timestamp())


def alert_sample(event: Event) -> beam.window.TimestampedValue:
    return window.TimestampedValue(Sample(event.source, "alert", time.time()), event.event_time.timestamp())


def dead_letter_sample(letter: DeadLetter) -> beam.window.TimestampedValue:
    at = letter.received_time.timestamp()
    return window.TimestampedValue(Sample(letter.source, "dead_letter", at, stage=letter.stage), at)


def observe(sample: Sample) -> Sample:
    """Counts a sample in the process's Prometheus metrics (core/telemetry.py) and passes it on."""
    telemetry.observe_sample(sample.source, sample.kind, sample.latency_s, sample.stage)
    return sample


class GuardLateness(beam.DoFn):
    """Re-stamps an element too late for its window's allowed lateness to now, so a window still takes it.

    Beam would drop it silently at the next grouping; `mark` flags it (the metrics count it as late).
    """

    def __init__(self, window_s: int, allowed_lateness_s: int, what: str, mark: Any = None):
        self._limit_s = window_s + allowed_lateness_s - WATERMARK_MARGIN_S
        self._what = what
        self._mark = mark

    def process(self, element: Any, timestamp: Timestamp = beam.DoFn.TimestampParam) -> Iterator[Any]:
        now = time.time()
        if now - float(timestamp) > self._limit_s:
            counter(names.beyond_lateness(self._what)).inc()
            yield window.TimestampedValue(self._mark(element) if self._mark else element, now)
        else:
            yield element


def _flag_late(sample: Sample) -> Sample:
    return sample._replace(arrived=float("inf"))


class WindowStats(beam.CombineFn):
    """Counts and latencies of one source in one window."""

    def create_accumulator(self) -> dict[str, Any]:
        return {"received": 0, "stored": 0, "dead_letter": 0, "alert": 0, "late": 0, "latencies": []}

    def add_input(self, acc: dict[str, Any], sample: Sample, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        acc[sample.kind] += 1
        if sample.latency_s is not None:
            acc["latencies"].append(sample.latency_s)
        if sample.kind == "received" and sample.arrived == float("inf"):
            acc["late"] += 1
        return acc

    def merge_accumulators(self, accumulators: Any, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        merged = self.create_accumulator()
        for acc in accumulators:
            for key in ("received", "stored", "dead_letter", "alert", "late"):
                merged[key] += acc[key]
            merged["latencies"].extend(acc["latencies"])
        return merged

    def extract_output(self, acc: dict[str, Any], *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return acc


class _LateInWindow(beam.DoFn):
    """Marks received samples that arrived after their window ended (on time for lateness, but late)."""

    def process(self, sample: Sample, win: window.BoundedWindow = beam.DoFn.WindowParam) -> Iterator[Sample]:
        if sample.kind == "received" and sample.arrived > float(win.end) + WATERMARK_MARGIN_S:
            yield _flag_late(sample)
        else:
            yield sample


def metrics_row(
    source: str, stats: dict[str, Any], start: float, end: float, config: NightwatchConfig, run_id: str
) -> dict[str, Any]:
    minutes = (end - start) / 60.0
    rate = stats["received"] / minutes
    spec = config.sources.sources.get(source)
    expected = spec.expected_rate_per_min if spec else None
    latencies = np.asarray(stats["latencies"], dtype=float)
    p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99])) if latencies.size else (None,) * 3
    window_start = datetime.fromtimestamp(start, timezone.utc)
    return {
        "source": source,
        "window_start": window_start,
        "run_id": run_id,
        "window_end": datetime.fromtimestamp(end, timezone.utc),
        "night": observing_night(window_start, config.sources.site.timezone),
        "received": stats["received"],
        "stored": stats["stored"],
        "dead_letters": stats["dead_letter"],
        "alerts": stats["alert"],
        "late": stats["late"],
        "rate_per_min": rate,
        "expected_rate_per_min": expected,
        "rate_deviation": (rate - expected) / expected if expected else None,
        "latency_p50_s": p50,
        "latency_p95_s": p95,
        "latency_p99_s": p99,
        "error_rate": stats["dead_letter"] / stats["received"] if stats["received"] else 0.0,
        "queue_depth": None,
        "updated_at": utcnow(),
    }


class _ToRow(beam.DoFn):
    """A window's row, judged against the expected rates in force (store/configs.py), re-read live."""

    def __init__(self, config: NightwatchConfig, run_id: str, db_url: str | None = None):
        self._config = config
        self._run_id = run_id
        self._db_url = db_url

    def setup(self) -> None:
        self._live = LiveConfig(self._config, self._db_url, self._config.streaming.thresholds.refresh_s)

    def teardown(self) -> None:
        self._live.close()

    def process(self, keyed: tuple[str, dict[str, Any]], win: window.BoundedWindow = beam.DoFn.WindowParam):
        source, stats = keyed
        yield metrics_row(source, stats, float(win.start), float(win.end), self._live.get(), self._run_id)


class _WriteMetrics(HotStoreDoFn):
    def __init__(self, url: str, streaming: StreamingConfig):
        super().__init__(url)
        self._streaming = streaming
        pubsub = streaming.pubsub
        self._subscriptions = {source: pubsub.subscription(source) for source in pubsub.topics}
        self._depth: QueueDepth | None = None

    def setup(self) -> None:
        super().setup()
        # The configured backend: the emulator's published - received, Cloud Monitoring, or Kafka's consumer lag.
        self._depth = queue_depth_reader(self._streaming, self._store)

    def process(self, row: dict[str, Any]) -> Iterator[dict[str, Any]]:
        try:
            self._store.upsert_metrics([row])
            # The backlog now (locally: published but not yet counted as received, this window included).
            row = {**row, "queue_depth": self._depth.depths([row["source"]]).get(row["source"])}
            self._store.upsert_metrics([row])
            source = row["source"]
            telemetry.observe_queue_depth(source, self._subscriptions.get(source, source), row["queue_depth"])
        except Exception:  # noqa: BLE001 - metrics are derived; a failed write is counted, the events are safe
            counter(names.METRICS_WRITE_FAILED).inc()
            return
        counter(names.METRICS_WRITTEN).inc()
        yield row


class WindowedMetrics(beam.PTransform):
    """Samples in (see `Sample`); one metrics row per source and window out, also upserted in the hot store."""

    def __init__(self, config: NightwatchConfig, db_url: str, run_id: str):
        super().__init__()
        self._config = config
        self._db_url = db_url
        self._run_id = run_id

    def expand(self, samples: beam.PCollection) -> beam.PCollection:
        spec = self._config.streaming.windows
        return (
            samples
            | "Observe" >> beam.Map(observe)
            | "GuardLateness"
            >> beam.ParDo(GuardLateness(spec.metrics_s, spec.allowed_lateness_s, "metrics", _flag_late))
            | "EventTimeWindows"
            >> beam.WindowInto(
                window.FixedWindows(spec.metrics_s),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                allowed_lateness=spec.allowed_lateness_s,
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            )
            | "MarkLate" >> beam.ParDo(_LateInWindow())
            | "BySource" >> beam.Map(lambda sample: (sample.source, sample))
            | "Stats" >> beam.CombinePerKey(WindowStats())
            | "ToRow" >> beam.ParDo(_ToRow(self._config, self._run_id, self._db_url))
            | "Write" >> beam.ParDo(_WriteMetrics(self._db_url, self._config.streaming))
        )
