"""The injection test (the guide's post-deployment step) and the canary.

Synthetic packets in the real formats, each designed to land in a known class (the simulator's designs),
flagged as injected, go through the real pipeline: a batch run over packet files, or the running streaming
job through Pub/Sub. The hot store is then read back and every injected event compared with its design:
recall and precision per class, the events that never arrived, latency (publish or receipt to store) and the
agents skipped. Critical recall below 99% is SEV-2.

Injected events never page anyone, never enter the warm tier or the archive, and are counted apart by the
console; their hot-store rows are flagged `injected`.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from config.settings import CLASSES, NightwatchConfig
from core.decoders import PacketDecoder
from core.event import Event, Packet, as_utc, utcnow
from devtools.pubsub import OutgoingPacket, PacketPublisher
from devtools.simulator import SimulatedPacket, classes_by_source, designed_packets
from store.hot import HotStore
from store.schema import events, injection_reports

CRITICAL_RECALL_FLOOR = 0.99
DEFAULT_CLASS_MIX = {"critical": 0.1, "significant": 0.25, "interesting": 0.2, "routine": 0.25, "rejected": 0.2}


def parse_class_mix(text: str | None) -> dict[str, float]:
    """'critical=0.2,routine=0.8' -> shares per class (normalised); None -> the default mix."""
    if not text:
        return dict(DEFAULT_CLASS_MIX)
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        name = name.strip()
        if name not in CLASSES:
            raise ValueError(f"--mix: unknown class {name!r}; classes are {', '.join(CLASSES)}")
        try:
            mix[name] = float(share)
        except ValueError as exc:
            raise ValueError(f"--mix: {part!r} is not CLASS=SHARE") from exc
        if mix[name] < 0:
            raise ValueError(f"--mix: {name} share must not be negative")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("--mix: the shares add up to nothing")
    return {name: share / total for name, share in mix.items()}


def plan(count: int, mix: dict[str, float], seed: int) -> list[tuple[str, str]]:
    """(source, class) pairs: the class counts follow the mix (largest remainder), each from a source that
    makes that class, in a shuffled order."""
    if count < 1:
        raise ValueError("--count must be at least 1")
    exact = {name: count * share for name, share in mix.items()}
    counts = {name: int(value) for name, value in exact.items()}
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[: count - sum(counts.values())]:
        counts[name] += 1
    rng = random.Random(seed)
    makers = {cls: [src for src, made in classes_by_source().items() if cls in made] for cls in CLASSES}
    pairs = [(rng.choice(makers[cls]), cls) for cls, n in counts.items() for _ in range(n)]
    rng.shuffle(pairs)
    return pairs


def make_packets(count: int, mix: dict[str, float], seed: int) -> list[SimulatedPacket]:
    # Event times are now: the injected events are live events as far as every panel is concerned.
    return list(designed_packets(plan(count, mix, seed), seed=seed, start=utcnow() - timedelta(seconds=60)))


def expected_classes(packets: Sequence[SimulatedPacket], config: NightwatchConfig) -> dict[str, str]:
    """event id -> designed class, by decoding each packet the way the pipeline will."""
    decoder = PacketDecoder(config.sources, config.limits.input)
    expected: dict[str, str] = {}
    for packet in packets:
        for decoded in decoder.decode(Packet(payload=packet.payload, origin=packet.name, source_hint=packet.source)):
            if isinstance(decoded, Event):
                expected[decoded.event_id] = packet.true_class
    return expected


@dataclass
class ClassScore:
    designed: int = 0
    stored: int = 0
    correct: int = 0
    predicted: int = 0  # injected events the pipeline put in this class

    @property
    def recall(self) -> float | None:
        return self.correct / self.designed if self.designed else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None


@dataclass
class InjectionReport:
    report_id: str
    created_at: str
    through: str
    injected: int
    classes: dict[str, dict[str, Any]]
    missing: list[str]
    misclassified: list[dict[str, str]]
    latency_s: dict[str, float | None]
    agent_skips: dict[str, int]
    critical_recall: float | None
    passed: bool
    severity: str | None
    reason: str
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"injection test {self.report_id} ({self.through}): {self.injected} events injected",
            f"{'class':<12}{'designed':>9}{'stored':>8}{'correct':>9}{'recall':>9}{'precision':>11}",
        ]
        for name, score in self.classes.items():
            recall = "-" if score["recall"] is None else f"{score['recall']:.1%}"
            precision = "-" if score["precision"] is None else f"{score['precision']:.1%}"
            lines.append(
                f"{name:<12}{score['designed']:>9}{score['stored']:>8}{score['correct']:>9}{recall:>9}{precision:>11}"
            )
        latency = self.latency_s
        if latency["p50"] is not None:
            lines.append(
                f"latency to store: p50 {latency['p50']:.2f} s, p95 {latency['p95']:.2f} s, max {latency['max']:.2f} s"
            )
        lines.append("agent skips: " + (", ".join(f"{name} {n}" for name, n in self.agent_skips.items()) or "none"))
        if self.missing:
            lines.append(f"never stored: {len(self.missing)} (e.g. {', '.join(self.missing[:3])})")
        for wrong in self.misclassified[:5]:
            lines.append(f"misclassified: {wrong['event_id']} designed {wrong['designed']}, got {wrong['got']}")
        lines += self.notes
        verdict = "PASS" if self.passed else f"FAIL: {self.severity}"
        lines.append(f"{verdict}: {self.reason}")
        return "\n".join(lines)


def score(store: HotStore, expected: dict[str, str], report_id: str, through: str) -> InjectionReport:
    """Compare what the hot store holds for the injected events with their designs."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.event_id, events.c.event_class, events.c.stored_at, events.c.payload).where(
                events.c.event_id.in_(list(expected)), events.c.injected.is_(True)
            )
        ).all()
    scores = {name: ClassScore() for name in CLASSES}
    stored: dict[str, Any] = {row.event_id: row for row in rows}
    latencies, skips, misclassified = [], Counter(), []
    for event_id, designed in expected.items():
        scores[designed].designed += 1
        row = stored.get(event_id)
        if row is None:
            continue
        scores[designed].stored += 1
        scores[row.event_class].predicted += 1
        if row.event_class == designed:
            scores[designed].correct += 1
        else:
            misclassified.append({"event_id": event_id, "designed": designed, "got": row.event_class})
        payload = json.loads(row.payload)
        sent = payload.get("published_time") or payload["received_time"]
        latencies.append((as_utc(row.stored_at) - datetime.fromisoformat(sent)).total_seconds())
        for name, found in payload.get("enrichments", {}).items():
            if found.get("status") == "skipped":
                skips[name] += 1
    missing = sorted(set(expected) - set(stored))
    critical = scores["critical"]
    recall = critical.recall
    passed, severity = True, None
    if recall is None:
        reason = "no critical event was injected: critical recall not measured (use a larger --count)"
    elif recall < CRITICAL_RECALL_FLOOR:
        passed, severity = False, "SEV-2"
        reason = f"critical recall {recall:.1%} < 99% ({critical.correct} of {critical.designed}): major degradation"
    else:
        reason = f"critical recall {recall:.1%} (>= 99%)"
    values = np.asarray(latencies, dtype=float)
    p50, p95, top = (float(v) for v in np.percentile(values, [50, 95, 100])) if values.size else (None,) * 3
    return InjectionReport(
        report_id=report_id,
        created_at=utcnow().isoformat(),
        through=through,
        injected=len(expected),
        classes={
            name: {**asdict(item), "recall": item.recall, "precision": item.precision}
            for name, item in scores.items()
            if item.designed or item.predicted
        },
        missing=missing,
        misclassified=misclassified,
        latency_s={"p50": p50, "p95": p95, "max": top},
        agent_skips=dict(sorted(skips.items())),
        critical_recall=recall,
        passed=passed,
        severity=severity,
        reason=reason,
    )


def save(store: HotStore, report: InjectionReport) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            injection_reports.insert().values(
                report_id=report.report_id,
                created_at=datetime.fromisoformat(report.created_at),
                through=report.through,
                injected=report.injected,
                critical_recall=report.critical_recall,
                passed=report.passed,
                severity=report.severity,
                report=json.dumps(asdict(report), default=str),
            )
        )


def reports(store: HotStore, limit: int = 20) -> list[dict[str, Any]]:
    query = sa.select(injection_reports).order_by(injection_reports.c.created_at.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def new_report_id() -> str:
    return f"inject-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def through_pubsub(
    packets: Sequence[SimulatedPacket],
    expected: dict[str, str],
    config: NightwatchConfig,
    project: str,
    store: HotStore,
    timeout_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Publish the packets (attribute injected=true) for the running streaming job; wait until it has stored
    every one, or the timeout passes (what is still missing then counts as missed)."""
    publisher = PacketPublisher(config.streaming.pubsub, project, store.url)
    try:
        publisher.publish(
            OutgoingPacket(packet.source, packet.payload, packet.event_time or utcnow(), injected=True)
            for packet in packets
        )
    finally:
        publisher.close()
    deadline = time.monotonic() + timeout_s
    ids = list(expected)
    while True:
        with store.engine.connect() as conn:
            found = conn.execute(
                sa.select(sa.func.count()).select_from(events).where(events.c.event_id.in_(ids))
            ).scalar_one()
        if progress:
            progress(int(found), len(ids))
        if found >= len(ids) or time.monotonic() > deadline:
            return
        time.sleep(1.0)
