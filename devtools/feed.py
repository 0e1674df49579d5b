"""A live feed: simulated sources publishing at a rate, with bursts, late, duplicated and bad packets.

This is how `nightwatch simulate --publish` and `nightwatch stream --feed` exercise the streaming job the
way a night does: Rubin's visits arrive as bursts of thousands of alerts, some packets arrive minutes
late and out of order, brokers redeliver, and a few packets are corrupt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.event import utcnow
from devtools.pubsub import OutgoingPacket, PacketPublisher
from devtools.simulator import generate_packets
from devtools.simulator.night import (
    BACKLOG_PACKETS,
    BAD_DATA_FRACTION,
    NIGHT_CLASS_WEIGHTS,
    STORM_CLASS_WEIGHTS,
    check_incident,
    loudest,
    night_mix,
    night_rate_per_s,
)

log = logging.getLogger("nightwatch.feed")
TICK_S = 0.5


@dataclass(frozen=True)
class FeedPlan:
    rate: float = 100.0  # packets per second
    duration_s: float = 60.0
    mix: dict[str, float] | None = None
    seed: int = 0
    bad_fraction: float = 0.01
    late_fraction: float = 0.02  # published minutes after their event time
    late_by_s: tuple[float, float] = (60.0, 900.0)
    duplicate_fraction: float = 0.01  # published a second time, as a redelivering broker would
    burst_size: int = 0  # a Rubin visit: this many alerts at once...
    burst_at_s: float = 5.0  # ...this many seconds into the feed
    burst_source: str = "rubin"
    class_weights: dict[str, dict[str, float]] | None = None  # None: the simulator's design weights
    bad_source: str | None = None  # only this source's packets are corrupt (an incident); None: any source's
    # A night: the feed starts on a whole minute and its event times cover exactly `duration_s` at `rate`, however
    # fast this machine makes packets (if slower, it publishes late and takes longer, not fewer).
    night: bool = False

    def __post_init__(self) -> None:
        if self.rate < 0 or self.duration_s < 0 or self.burst_size < 0:
            raise ValueError("rate, duration and burst size must not be negative")
        for name in ("bad_fraction", "late_fraction", "duplicate_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")


@dataclass
class FeedReport:
    published: Counter = field(default_factory=Counter)  # per source, duplicates included
    bad: int = 0
    late: int = 0
    duplicates: int = 0
    true_classes: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.published.values())


def _share(rng: random.Random, count: int, fraction: float) -> int:
    """How many of `count` items fall in a `fraction`, drawn item by item (a share of a small batch is not 0)."""
    return sum(rng.random() < fraction for _ in range(count))


def night_plan(
    expected_per_min: dict[str, float],
    duration_s: float,
    seed: int = 0,
    incident: str | None = None,
    rate: float | None = None,
) -> FeedPlan:
    """A normal night at the configured rates (config/sources.yaml) and a real night's classes, or one of the
    guide's abnormal cases on purpose (`devtools.simulator.night.INCIDENTS`)."""
    check_incident(incident)
    rates = dict(expected_per_min)
    main = loudest(rates)
    classes = dict(NIGHT_CLASS_WEIGHTS)
    bad_fraction, bad_source, burst = 0.0, None, 0
    if incident == "silent-source":
        rates[main] = 0.0
    elif incident == "bad-data":
        bad_source = main
        bad_fraction = BAD_DATA_FRACTION * night_mix(rates)[main]
    elif incident == "backlog":
        burst = BACKLOG_PACKETS
    elif incident == "alert-storm":
        classes[main] = STORM_CLASS_WEIGHTS
    return FeedPlan(
        rate=night_rate_per_s(rates) if rate is None else rate,
        duration_s=duration_s,
        mix=night_mix(rates),
        seed=seed,
        bad_fraction=bad_fraction,
        # A real night's stragglers: a few packets seconds late, a few redelivered.
        late_fraction=0.005,
        late_by_s=(2.0, 20.0),
        duplicate_fraction=0.005,
        burst_size=burst,
        burst_at_s=5.0,
        burst_source=main,
        class_weights=classes,
        bad_source=bad_source,
        night=True,
    )


def _batch(plan: FeedPlan, seed: int, count: int, start, span_s: float, mix=None) -> list:
    bad = _share(random.Random(seed), count, plan.bad_fraction)
    packets = []
    for part, bad_fraction in ((count - bad, 0.0), (bad, 1.0)):
        part_mix = mix or plan.mix
        if bad_fraction and plan.bad_source:
            part_mix = {plan.bad_source: 1.0}
        packets += generate_packets(
            part,
            seed=seed * 2 + int(bad_fraction),
            mix=part_mix,
            start=start,
            span_s=span_s,
            bad_fraction=bad_fraction,
            rubin_wire="both",
            class_weights=plan.class_weights,
        )
    return packets


def _next_minute(stop: threading.Event | None) -> datetime:
    """Wait for the next whole minute (a night's 1-minute metric windows then hold whole minutes of it)."""
    now = utcnow()
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    wait_s = (boundary - now).total_seconds()
    if stop is not None:
        stop.wait(wait_s)
    else:
        time.sleep(wait_s)
    return boundary


def run_feed(
    publisher: PacketPublisher,
    plan: FeedPlan,
    stop: threading.Event | None = None,
    progress: Callable[[FeedReport], None] | None = None,
) -> FeedReport:
    """Publish per the plan until its duration ends or `stop` is set; returns what was published."""
    rng = random.Random(plan.seed)
    report = FeedReport()
    recent: deque = deque(maxlen=200)
    began = _next_minute(stop) if plan.night else utcnow()
    started = time.monotonic()
    night_end = began + timedelta(seconds=plan.duration_s)
    last = began
    owed, tick, burst_done = 0.0, 0, plan.burst_size == 0
    while not (stop and stop.is_set()):
        tick += 1
        tick_started = time.monotonic()
        now = utcnow()
        if plan.night:  # event time: the next slice of the night, however long making the last one took
            if last >= night_end:
                break
            until = min(now, night_end)
            start, span_s, last = last, max((until - last).total_seconds(), 1e-3), until
        else:
            if time.monotonic() - started >= plan.duration_s:
                break
            start, span_s = now - timedelta(seconds=TICK_S), TICK_S
        owed += plan.rate * span_s
        count, owed = int(owed), owed - int(owed)
        packets = _batch(plan, plan.seed * 1_000_003 + tick, count, start, span_s)
        late = {index for index in range(len(packets)) if rng.random() < plan.late_fraction}
        if late:  # packets from minutes ago instead: arriving late and out of order
            # Never before the feed began: a straggler belongs to this feed's night, not to an earlier minute.
            late_start = max(began, start - timedelta(seconds=rng.uniform(*plan.late_by_s)))
            replaced = _batch(plan, -(plan.seed * 1_000_003 + tick), len(late), late_start, 1.0)
            packets = [packet for index, packet in enumerate(packets) if index not in late] + replaced
            report.late += len(replaced)
        if not burst_done and time.monotonic() - started >= plan.burst_at_s:
            at = start if plan.night else now  # a night's burst belongs to the night's clock
            burst = _batch(plan, plan.seed * 7 + 1, plan.burst_size, at, 1.0, mix={plan.burst_source: 1.0})
            packets += burst
            burst_done = True
            log.info("burst: %d %s packets at once", len(burst), plan.burst_source)
        repeats = min(len(recent), _share(rng, len(packets), plan.duplicate_fraction))
        duplicates = rng.sample(list(recent), repeats)
        rng.shuffle(packets)
        outgoing = packets + duplicates
        publisher.publish(OutgoingPacket(p.source, p.payload, p.event_time or now) for p in outgoing)
        for packet in outgoing:
            report.published[packet.source] += 1
        report.duplicates += len(duplicates)
        report.bad += sum(packet.true_class == "bad" for packet in packets)
        report.true_classes.update(packet.true_class for packet in packets)
        recent.extend(packets)
        if progress:
            progress(report)
        time.sleep(max(0.0, TICK_S - (time.monotonic() - tick_started)))
    return report
