"""The guide's monitoring metrics per source, in event-time windows, written to the hot store.

Event rate (and its deviation from the expected rate), processing latency p50/p95/p99 (publish to sink),
queue depth, error rate (dead-lettered / received) and alert volume.

Time is the runner's, never the wall clock: a window is open, closed or late by the watermark. Each window also
fires early (every `early_firing_s` of processing time) so the monitor is live while it is open, fires on time
when the watermark passes its end, and re-fires for packets up to the allowed lateness behind it: what a late
pane adds is counted late (pane timing, `PaneInfo`). Packets later still, which Beam would drop, are moved to
the window the watermark is in (the watermark as the runner reported it, through an event-time timer) and
counted late there: nothing late is dropped without being counted. A watermark hours behind the wall clock (a
backlog on Dataflow) makes nothing late by itself.

Samples are pre-aggregated per (source, window) in each bundle, so the windows, the lateness probe and the
store see a few partial aggregates per bundle, not an element per packet; latencies go into a DDSketch
(mergeable, bounded, 1% relative accuracy), not a list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import BooleanCoder, FloatCoder, PickleCoder, VarIntCoder
from apache_beam.transforms import trigger, userstate, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp
from apache_beam.utils.windowed_value import WindowedValue
from ddsketch import DDSketch

from config.settings import NightwatchConfig, StreamingConfig
from config.streaming import WindowSpec
from core import names, telemetry
from core.event import DeadLetter, Event, utcnow
from core.night import observing_night
from ops.queue_depth import QueueDepth, queue_depth_reader
from store.configs import LiveConfig
from transforms.common import counter
from transforms.hotstore import HotStoreDoFn

# A latency sketch's relative accuracy: p99 of 30 s is known to within 0.3 s.
SKETCH_ACCURACY = 0.01
KINDS = ("received", "stored", "dead_letter", "alert")


class Sample(NamedTuple):
    """One observation for the metrics: a packet received, an event stored, a dead letter, an alert."""

    source: str
    kind: str  # received | stored | dead_letter | alert
    latency_s: float | None = None  # publish to sink, for stored events
    stage: str | None = None  # where a dead letter comes from


@dataclass
class Stats:
    """Counts and a latency sketch of one source in one window (or a part of it): mergeable."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    late: int = 0  # received packets counted late (beyond the allowed lateness, or in a late pane)
    latencies: DDSketch = field(default_factory=lambda: DDSketch(SKETCH_ACCURACY))

    def add(self, sample: Sample) -> None:
        self.counts[sample.kind] += 1
        if sample.latency_s is not None:
            self.latencies.add(max(sample.latency_s, 0.0))

    def merge(self, other: Stats) -> Stats:
        for kind, value in other.counts.items():
            self.counts[kind] += value
        self.late += other.late
        if other.latencies.count:
            self.latencies.merge(other.latencies)
        return self

    def quantile(self, q: float) -> float | None:
        return self.latencies.get_quantile_value(q) if self.latencies.count else None


def _unix(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def received_sample(item: Event | DeadLetter) -> beam.window.TimestampedValue:
    at = getattr(item, "event_time", None) or item.received_time
    return window.TimestampedValue(Sample(item.source, "received"), at.timestamp())


def stored_sample(event: Event) -> beam.window.TimestampedValue:
    # The latency is a measurement (publish to store, both from clocks that stamped the event), not a decision.
    stored = _unix(event.stored_time) or utcnow().timestamp()
    published = _unix(event.published_time) or event.received_time.timestamp()
    sample = Sample(event.source, "stored", max(0.0, stored - published))
    return window.TimestampedValue(sample, event.event_time.timestamp())


def alert_sample(event: Event) -> beam.window.TimestampedValue:
    return window.TimestampedValue(Sample(event.source, "alert"), event.event_time.timestamp())


def dead_letter_sample(letter: DeadLetter) -> beam.window.TimestampedValue:
    at = letter.received_time.timestamp()
    return window.TimestampedValue(Sample(letter.source, "dead_letter", stage=letter.stage), at)


def observe(sample: Sample) -> Sample:
    """Counts a sample in the process's Prometheus metrics (core/telemetry.py) and passes it on."""
    telemetry.observe_sample(sample.source, sample.kind, sample.latency_s, sample.stage)
    return sample


class _PreAggregate(beam.DoFn):
    """Samples in; per bundle, one `(source, Stats)` per source and metrics window out, stamped at the window's
    start (the same window), in the global window the samples came in."""

    def __init__(self, window_s: int):
        self._window_s = window_s
        self._parts: dict[tuple[str, int], Stats] = {}

    def start_bundle(self) -> None:
        self._parts = {}

    def process(self, sample: Sample, timestamp: Timestamp = beam.DoFn.TimestampParam) -> None:
        observe(sample)
        start = int(timestamp.micros // 1_000_000 // self._window_s * self._window_s)
        key = (sample.source, start)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = Stats()
        part.add(sample)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for (source, start), part in self._parts.items():
            yield WindowedValue((source, part), Timestamp(start), [window.GlobalWindow()])
        self._parts = {}


class KeepBeyondLateness(beam.DoFn):
    """Keyed elements in the global window; those further behind the watermark than `window_s` plus the allowed
    lateness (which a window would drop) are re-stamped to the watermark and, with `mark`, flagged.

    The watermark is the runner's, learnt through an event-time timer per key: armed at an element's timestamp,
    it fires once the watermark passes it, and that time is kept as what the watermark is known to have reached.
    Until the first one fires nothing is known, so a key's first elements wait in state for it (a job that starts
    on a backlog would otherwise lose its oldest packets). A lagging watermark (a backlog) never makes an element
    late, and the wall clock is never read.
    """

    WATERMARK = userstate.ReadModifyWriteStateSpec("watermark", FloatCoder())
    ARMED = userstate.ReadModifyWriteStateSpec("armed", BooleanCoder())
    HELD = userstate.BagStateSpec("held", PickleCoder())  # (value, timestamp) until the watermark is known
    PROBE = userstate.TimerSpec("probe", TimeDomain.WATERMARK)

    def __init__(self, window_s: int, allowed_lateness_s: int, what: str, mark: Any = None):
        self._limit_s = window_s + allowed_lateness_s
        self._what = what
        self._mark = mark

    def _decide(self, key: Any, value: Any, at: float, known: float) -> Any:
        if at < known - self._limit_s:
            counter(names.beyond_lateness(self._what)).inc()
            return window.TimestampedValue((key, self._mark(value) if self._mark else value), known)
        return window.TimestampedValue((key, value), at)

    def process(
        self,
        keyed: tuple[Any, Any],
        timestamp: Timestamp = beam.DoFn.TimestampParam,
        watermark: Any = beam.DoFn.StateParam(WATERMARK),
        armed: Any = beam.DoFn.StateParam(ARMED),
        held: Any = beam.DoFn.StateParam(HELD),
        probe: Any = beam.DoFn.TimerParam(PROBE),
    ) -> Iterator[Any]:
        known = watermark.read()
        if not armed.read():
            probe.set(max(timestamp, Timestamp(known)) if known is not None else timestamp)
            armed.write(True)
        if known is None:
            held.add((keyed[1], float(timestamp)))
            return
        if float(timestamp) < known - self._limit_s:
            yield self._decide(keyed[0], keyed[1], float(timestamp), known)
        else:
            yield keyed

    @userstate.on_timer(PROBE)
    def _reached(
        self,
        key: Any = beam.DoFn.KeyParam,
        fired: Timestamp = beam.DoFn.TimestampParam,
        watermark: Any = beam.DoFn.StateParam(WATERMARK),
        armed: Any = beam.DoFn.StateParam(ARMED),
        held: Any = beam.DoFn.StateParam(HELD),
    ) -> Iterator[Any]:
        known = max(float(fired), watermark.read() or float(MIN_TIMESTAMP))
        watermark.write(known)
        armed.write(False)  # the next element re-arms it: an idle key sets no timers
        waiting = list(held.read())
        held.clear()
        for value, at in waiting:
            yield self._decide(key, value, at, known)


def _all_late(stats: Stats) -> Stats:
    stats.late += stats.counts["received"]
    return stats


class MergeStats(beam.CombineFn):
    """Partial `Stats` in, one `Stats` per source and window out."""

    def create_accumulator(self) -> Stats:
        return Stats()

    def add_input(self, acc: Stats, part: Stats, *_args: Any, **_kwargs: Any) -> Stats:
        return acc.merge(part)

    def merge_accumulators(self, accumulators: Any, *_args: Any, **_kwargs: Any) -> Stats:
        merged = Stats()
        for acc in accumulators:
            merged.merge(acc)
        return merged

    def extract_output(self, acc: Stats, *_args: Any, **_kwargs: Any) -> Stats:
        return acc


class _LateFromPanes(beam.DoFn):
    """A window's accumulating panes in, per source; counts as late what a LATE pane added to the last pane that
    was not late (state per source and window), beside what was already beyond the lateness."""

    ON_TIME = userstate.ReadModifyWriteStateSpec("on_time_received", VarIntCoder())

    def process(
        self,
        keyed: tuple[str, Stats],
        pane: Any = beam.DoFn.PaneInfoParam,
        on_time: Any = beam.DoFn.StateParam(ON_TIME),
    ) -> Iterator[tuple[str, Stats]]:
        source, stats = keyed
        in_time = stats.counts["received"] - stats.late  # what arrived within the window or its lateness
        if pane.timing == beam.utils.windowed_value.PaneInfoTiming.LATE:
            added = in_time - (on_time.read() or 0)
            stats = Stats(dict(stats.counts), stats.late + max(0, added), stats.latencies)
        else:
            on_time.write(in_time)
        yield source, stats


@dataclass(frozen=True)
class MetricsContext:
    """What a metrics row needs of the configuration (not the whole `NightwatchConfig`)."""

    expected_per_min: dict[str, float | None]
    timezone: str
    run_id: str

    @classmethod
    def of(cls, config: NightwatchConfig, run_id: str) -> MetricsContext:
        expected = {name: spec.expected_rate_per_min for name, spec in config.sources.sources.items()}
        return cls(expected, config.sources.site.timezone, run_id)


def metrics_row(source: str, stats: Stats, start: float, end: float, context: MetricsContext) -> dict[str, Any]:
    minutes = (end - start) / 60.0
    received = stats.counts["received"]
    rate = received / minutes
    expected = context.expected_per_min.get(source)
    window_start = datetime.fromtimestamp(start, timezone.utc)
    return {
        "source": source,
        "window_start": window_start,
        "run_id": context.run_id,
        "window_end": datetime.fromtimestamp(end, timezone.utc),
        "night": observing_night(window_start, context.timezone),
        "received": received,
        "stored": stats.counts["stored"],
        "dead_letters": stats.counts["dead_letter"],
        "alerts": stats.counts["alert"],
        "late": stats.late,
        "rate_per_min": rate,
        "expected_rate_per_min": expected,
        "rate_deviation": (rate - expected) / expected if expected else None,
        "latency_p50_s": stats.quantile(0.50),
        "latency_p95_s": stats.quantile(0.95),
        "latency_p99_s": stats.quantile(0.99),
        "error_rate": stats.counts["dead_letter"] / received if received else 0.0,
        "queue_depth": None,
        "updated_at": utcnow(),
    }


class _ToRow(beam.DoFn):
    """A window's row, judged against the expected rates in force (store/configs.py), re-read live: the one step of
    the metrics that carries the whole configuration, as the base the version in force is read over."""

    def __init__(self, config: NightwatchConfig, run_id: str, db_url: str | None = None):
        self._config = config
        self._run_id = run_id
        self._db_url = db_url

    def setup(self) -> None:
        self._live = LiveConfig(self._config, self._db_url, self._config.streaming.thresholds.refresh_s)

    def teardown(self) -> None:
        self._live.close()

    def process(self, keyed: tuple[str, Stats], win: window.BoundedWindow = beam.DoFn.WindowParam):
        source, stats = keyed
        context = MetricsContext.of(self._live.get(), self._run_id)
        yield metrics_row(source, stats, float(win.start), float(win.end), context)


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


def metrics_windowing(spec: WindowSpec) -> beam.WindowInto:
    """Fixed event-time windows: early panes while open, one on time, one per late arrival within the lateness."""
    return beam.WindowInto(
        window.FixedWindows(spec.metrics_s),
        trigger=trigger.AfterWatermark(
            early=trigger.AfterProcessingTime(spec.early_firing_s), late=trigger.AfterCount(1)
        ),
        allowed_lateness=spec.allowed_lateness_s,
        accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
    )


class WindowedMetrics(beam.PTransform):
    """Samples in (see `Sample`); one metrics row per source and window pane out, also upserted in the hot store."""

    def __init__(self, config: NightwatchConfig, db_url: str, run_id: str):
        super().__init__()
        self._config = config  # the base of the configuration in force, for the rows (`_ToRow`)
        self._spec = config.streaming.windows
        self._streaming = config.streaming
        self._run_id = run_id
        self._db_url = db_url

    def expand(self, samples: beam.PCollection) -> beam.PCollection:
        spec = self._spec
        return (
            samples
            | "PreAggregate" >> beam.ParDo(_PreAggregate(spec.metrics_s))
            | "KeepBeyondLateness"
            >> beam.ParDo(KeepBeyondLateness(spec.metrics_s, spec.allowed_lateness_s, "metrics", _all_late))
            | "EventTimeWindows" >> metrics_windowing(spec)
            | "Stats" >> beam.CombinePerKey(MergeStats())
            | "LateFromPanes" >> beam.ParDo(_LateFromPanes())
            | "ToRow" >> beam.ParDo(_ToRow(self._config, self._run_id, self._db_url))
            | "Write" >> beam.ParDo(_WriteMetrics(self._db_url, self._streaming))
        )
