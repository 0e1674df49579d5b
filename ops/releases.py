"""Releases of the cuts and rules without downtime: register, shadow, canary, promote, roll back.

Every state change is done by a user whose role is checked here (registering and shadowing: Operator, who may
adjust thresholds; canary, promotion and rollback: Admin, who configures the system) and audited. The running
jobs follow through the hot store (`store.releases`, `store.thresholds.LiveRules`): nothing restarts.

The checks:
- **injection set**: the simulator's designed packets (ops/inject.py), decoded as the pipeline decodes them and
  decided by the candidate; critical recall below the floor (99%) refuses a canary and a promotion;
- **shadow**: recent nights of the archive (or recent events of the hot store) decided by the version in force
  and by the candidate, per class and event (`core.decision_diff`); a running job also records, on every event,
  the class the release in shadow would have given (`shadow_version`, `shadow_class` in its lineage);
- **canary**: the events the canary decided against the rest, since it began: alerts per event (the alert
  volume) and, on injected events, critical recall against the version in force; a failing check ends the
  canary by itself.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from access.accounts import SYSTEM, acting
from access.audit import record
from access.roles import AccessError
from config.settings import ClassificationConfig, FiltersConfig, NightwatchConfig
from core.decision_diff import preview
from core.decisions import decide
from core.decoders import PacketDecoder
from core.event import Event, Packet
from store.hot import HotStore
from store.layout import Outputs
from store.releases import SHIPPED, Release, ReleaseStore, document_of, kind_of
from store.schema import events
from store.thresholds import ThresholdStore
from store.tiers import read_archive

REGISTER, TRIAL, DECIDE = "adjust_thresholds", "adjust_thresholds", "configure_system"
ALERTING = ("critical", "significant")
CHANGED_KEPT = 500  # events listed in a stored report (the counts cover every one)


class ReleaseRefused(AccessError):
    """A release step refused: the message says why (a failed check, a wrong state)."""


# --- the versions in force and the candidate ------------------------------------------------------------------


def in_force(store: HotStore, config: NightwatchConfig) -> tuple[FiltersConfig, ClassificationConfig]:
    versions = ThresholdStore(store)
    return versions.latest("filters") or config.filters, versions.latest("classification") or config.classification


def with_candidate(release: Release, filters: FiltersConfig, rules: ClassificationConfig) -> tuple[Any, Any]:
    """The cuts and rules with the release in place of its kind."""
    return (release.model, rules) if release.kind == "filters" else (filters, release.model)


def _release(store: HotStore, release_id: int) -> Release:
    release = ReleaseStore(store).get(release_id)
    if release is None:
        raise ReleaseRefused(f"no release {release_id}; see `nightwatch release list`")
    return release


def _note(note: str, what: str) -> str:
    if not note.strip():
        raise ReleaseRefused(f"say why ({what} needs a note)")
    return note.strip()


def register(store: HotStore, actor: str, model: FiltersConfig | ClassificationConfig, notes: str) -> int:
    """Keep a new version of the cuts or rules (validated when it was built) with its author and notes."""
    acting(store, actor, REGISTER)
    notes = _note(notes, "a release")
    release_id = ReleaseStore(store).register(model, actor, notes)
    record(store, actor, "release.register", f"release:{release_id}", None, {"kind": kind_of(model)}, notes)
    return release_id


# --- the injection set ---------------------------------------------------------------------------------------


@dataclass
class InjectionCheck:
    designed: dict[str, int]
    correct: dict[str, int]
    critical_recall: float | None
    floor: float

    @property
    def passed(self) -> bool:
        return self.critical_recall is not None and self.critical_recall >= self.floor

    def line(self) -> str:
        recall = "not measured" if self.critical_recall is None else f"{self.critical_recall:.1%}"
        return f"injection set: critical recall {recall} (floor {self.floor:.0%}): {'PASS' if self.passed else 'FAIL'}"


def designed_events(config: NightwatchConfig) -> list[tuple[Event, str]]:
    """The injection set: (decoded event, designed class), the designed packets of ops/inject.py."""
    from ops.inject import DEFAULT_CLASS_MIX, make_packets

    settings = config.releases
    decoder = PacketDecoder(config.sources, config.limits.input)
    designed = []
    for packet in make_packets(settings.injection_count, DEFAULT_CLASS_MIX, settings.injection_seed):
        packet_in = Packet(payload=packet.payload, origin=packet.name, source_hint=packet.source, injected=True)
        for decoded in decoder.decode(packet_in):
            if isinstance(decoded, Event):
                designed.append((decoded, packet.true_class))
    return designed


def injection_check(
    filters: FiltersConfig, rules: ClassificationConfig, config: NightwatchConfig, designed: list | None = None
) -> InjectionCheck:
    designed_count, correct = Counter(), Counter()
    for event, expected in designed if designed is not None else designed_events(config):
        designed_count[expected] += 1
        correct[expected] += decide(event, filters, rules) == expected
    critical = designed_count["critical"]
    recall = correct["critical"] / critical if critical else None
    return InjectionCheck(dict(designed_count), dict(correct), recall, config.releases.min_critical_recall)


# --- shadow --------------------------------------------------------------------------------------------------


def archived_events(archive_root: str, nights: int, limit: int) -> list[Event]:
    """The events of the last `nights` nights of the archive (as they were decided; the raw bytes are not read
    by the decisions)."""
    records = read_archive(archive_root)
    recent = sorted({r["night"] for r in records if r["night"]}, reverse=True)[:nights]
    chosen = [r for r in records if r["night"] in recent]
    chosen.sort(key=lambda r: r["received_time"], reverse=True)
    return [Event.model_validate_json(r["event_json"]) for r in chosen[:limit]]


def hot_events(store: HotStore, limit: int) -> list[Event]:
    query = sa.select(events.c.payload).order_by(events.c.received_time.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [Event.model_validate_json(payload) for payload in conn.execute(query).scalars()]


def diff_report(
    release: Release,
    recent: Iterable[Event],
    filters: FiltersConfig,
    rules: ClassificationConfig,
    config: NightwatchConfig,
    replayed_from: str,
) -> dict[str, Any]:
    """The decision diff: per class before and after, the events that change, and the injection check."""
    new_filters, new_rules = with_candidate(release, filters, rules)
    result = preview(recent, filters, rules, new_filters, new_rules)
    check = injection_check(new_filters, new_rules, config)
    in_force_version = filters.version if release.kind == "filters" else rules.version
    return {
        "release_id": release.release_id,
        "label": release.label,
        "in_force": in_force_version,
        "replayed_from": replayed_from,
        "considered": result.considered,
        "changed_count": len(result.changed),
        "per_class": {
            name: {"before": result.before_counts[name], "after": result.after_counts[name]}
            for name in sorted(set(result.before_counts) | set(result.after_counts))
        },
        "transitions": {f"{before}->{after}": n for (before, after), n in sorted(result.transitions.items())},
        "changed": result.changed[:CHANGED_KEPT],
        "injection": {**asdict(check), "passed": check.passed},
    }


def shadow(
    store: HotStore, actor: str, release_id: int, config: NightwatchConfig, outputs: Outputs, replay_from: str
) -> dict[str, Any]:
    """Put a release in shadow (running jobs record what it would decide) and replay recent nights through it."""
    acting(store, actor, TRIAL)
    release = _release(store, release_id)
    if release.status not in ("registered", "shadow", "rolled_back"):
        raise ReleaseRefused(f"release {release_id} is {release.status}: only a registered release goes in shadow")
    settings = config.releases
    if replay_from == "archive":
        recent = archived_events(outputs.archive_root, settings.shadow_nights, settings.shadow_max_events)
        where = f"archive: last {settings.shadow_nights} nights ({outputs.archive_root})"
    else:
        recent = hot_events(store, settings.shadow_max_events)
        where = "hot store: newest events"
    filters, rules = in_force(store, config)
    report = diff_report(release, recent, filters, rules, config, where)
    releases = ReleaseStore(store)
    releases.set_status(release_id, "shadow", started=release.status != "shadow")
    releases.save_report(release_id, report)
    record(
        store,
        actor,
        "release.shadow",
        f"release:{release_id}",
        {"status": release.status},
        {
            "status": "shadow",
            "changed": report["changed_count"],
            "critical_recall": report["injection"]["critical_recall"],
        },
        where,
    )
    return report


def live_shadow(store: HotStore, release: Release) -> dict[str, Any]:
    """What the running jobs recorded while the release was in shadow: the stored class against its class."""
    since = release.trial_started_at
    query = sa.select(events.c.event_id, events.c.source, events.c.event_class, events.c.payload)
    if since is not None:
        query = query.where(events.c.stored_at >= since)
    transitions, changed, considered = Counter(), [], 0
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            lineage = json.loads(row.payload).get("lineage", {})
            if release.label not in lineage.get("shadow_version", "").split(","):
                continue
            considered += 1
            before, after = row.event_class, lineage["shadow_class"]
            if before != after:
                transitions[f"{before}->{after}"] += 1
                changed.append({"event": row.event_id, "source": row.source, "before": before, "after": after})
    return {
        "considered": considered,
        "changed_count": len(changed),
        "transitions": dict(transitions),
        "changed": changed,
    }


# --- canary --------------------------------------------------------------------------------------------------


def _require_injection(release: Release, store: HotStore, config: NightwatchConfig, what: str) -> InjectionCheck:
    check = injection_check(*with_candidate(release, *in_force(store, config)), config)
    if not check.passed:
        raise ReleaseRefused(f"{what} refused: release {release.release_id} fails the injection test ({check.line()})")
    return check


def canary(
    store: HotStore, actor: str, release_id: int, config: NightwatchConfig, share: float | None = None
) -> InjectionCheck:
    """Let a release decide a share of the events (by a hash of their ids), if it passes the injection test."""
    acting(store, actor, DECIDE)
    release = _release(store, release_id)
    share = config.releases.canary_share if share is None else share
    if not 0.0 < share < 1.0:
        raise ReleaseRefused(f"canary share {share} must be between 0 and 1 (promote to give it every event)")
    if release.status not in ("registered", "shadow", "canary", "rolled_back"):
        raise ReleaseRefused(f"release {release_id} is {release.status}: it cannot go in canary")
    others = [r for r in ReleaseStore(store).trials() if r.kind == release.kind and r.release_id != release_id]
    if any(r.status == "canary" for r in others):
        raise ReleaseRefused(f"another {release.kind} release is in canary; promote or roll it back first")
    check = _require_injection(release, store, config, "canary")
    ReleaseStore(store).set_status(release_id, "canary", share=share, started=release.status != "canary")
    record(
        store,
        actor,
        "release.canary",
        f"release:{release_id}",
        {"status": release.status},
        {"status": "canary", "share": share},
        check.line(),
    )
    return check


@dataclass
class CanaryCheck:
    """One look at a canary: its events against the rest since it began."""

    canary_events: int = 0
    canary_alerts: int = 0
    other_events: int = 0
    other_alerts: int = 0
    injected_critical: int = 0  # injected canary events the version in force calls critical
    injected_kept: int = 0  # of those, the ones the canary also called critical
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def line(self) -> str:
        rate = lambda alerts, total: f"{alerts}/{total}"  # noqa: E731 - a format, read twice
        recall = f"{self.injected_kept}/{self.injected_critical}" if self.injected_critical else "no injected critical"
        verdict = "ok" if self.passed else "FAIL: " + "; ".join(self.problems)
        return (
            f"canary alerts/events {rate(self.canary_alerts, self.canary_events)}, "
            f"others {rate(self.other_alerts, self.other_events)}; injected critical kept {recall}: {verdict}"
        )


def check_canary(store: HotStore, release: Release, config: NightwatchConfig) -> CanaryCheck:
    settings, result = config.releases, CanaryCheck()
    filters, rules = in_force(store, config)
    query = sa.select(events.c.event_class, events.c.injected, events.c.payload)
    if release.trial_started_at is not None:
        query = query.where(events.c.stored_at >= release.trial_started_at)
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            lineage = json.loads(row.payload).get("lineage", {})
            mine = release.label in (lineage.get("filter_version"), lineage.get("rules_version"))
            alert = row.event_class in ALERTING
            if not mine:
                result.other_events += 1
                result.other_alerts += alert
                continue
            result.canary_events += 1
            result.canary_alerts += alert
            if row.injected:
                event = Event.model_validate_json(row.payload)
                if decide(event, filters, rules) == "critical":
                    result.injected_critical += 1
                    result.injected_kept += decide(event, *with_candidate(release, filters, rules)) == "critical"
    if result.canary_events >= settings.min_events and result.other_events:
        canary_rate = result.canary_alerts / result.canary_events
        other_rate = result.other_alerts / result.other_events
        if canary_rate > settings.max_alert_ratio * max(other_rate, 1.0 / result.other_events):
            result.problems.append(
                f"alert volume: {canary_rate:.1%} of canary events alert against {other_rate:.1%} of the others "
                f"(over {settings.max_alert_ratio}x)"
            )
    if result.injected_critical and result.injected_kept / result.injected_critical < settings.min_critical_recall:
        result.problems.append(
            f"critical recall on injected events {result.injected_kept}/{result.injected_critical} "
            f"< {settings.min_critical_recall:.0%}"
        )
    return result


def watch_canary(
    store: HotStore,
    release_id: int,
    config: NightwatchConfig,
    duration_s: float | None = None,
    progress: Callable[[CanaryCheck], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CanaryCheck:
    """Look at a canary every poll until the watch ends; the first failed check ends the canary by itself
    (audited as the system) and is returned."""
    settings = config.releases
    deadline = clock() + (settings.watch_s if duration_s is None else duration_s)
    while True:
        release = _release(store, release_id)
        if release.status != "canary":
            raise ReleaseRefused(f"release {release_id} is {release.status}, no longer in canary")
        result = check_canary(store, release, config)
        if progress:
            progress(result)
        if not result.passed:
            ReleaseStore(store).set_status(release_id, "rolled_back")
            record(
                store,
                f"{SYSTEM}:canary-watch",
                "release.canary_ended",
                f"release:{release_id}",
                {"status": "canary"},
                {"status": "rolled_back"},
                result.line(),
            )
            return result
        if clock() >= deadline:
            return result
        sleep(settings.poll_s)


# --- promotion and rollback ----------------------------------------------------------------------------------


def promote(store: HotStore, actor: str, release_id: int, config: NightwatchConfig, note: str = "") -> int:
    """Put a release in force for every event (running jobs follow within seconds); refused when it fails the
    injection test. Returns the new thresholds version."""
    acting(store, actor, DECIDE)
    release = _release(store, release_id)
    if release.status == "promoted":
        raise ReleaseRefused(f"release {release_id} is already in force")
    check = _require_injection(release, store, config, "promotion")
    filters, rules = in_force(store, config)
    before = filters.version if release.kind == "filters" else rules.version
    version = ReleaseStore(store).put_in_force(
        release.kind, release.document, release_id, actor, note.strip() or f"release {release_id} promoted"
    )
    record(
        store,
        actor,
        "release.promote",
        f"release:{release_id}",
        {"in_force": before},
        {"in_force": release.label, "thresholds_version": version},
        f"{note.strip()} ({check.line()})".strip(),
    )
    return version


def rollback(store: HotStore, actor: str, release_id: int, config: NightwatchConfig, note: str) -> str:
    """End a release's trial, or, if it is in force, put back the version in force before it. Returns what
    decides now."""
    acting(store, actor, DECIDE)
    note = _note(note, "a rollback")
    release = _release(store, release_id)
    releases = ReleaseStore(store)
    if release.status in ("shadow", "canary"):
        releases.set_status(release_id, "rolled_back")
        now = "the version in force (trial ended)"
    elif release.status == "promoted":
        rows = releases.in_force_rows(release.kind, limit=50)
        current = next((i for i, row in enumerate(rows) if row.release_id == release_id), None)
        if current != 0:
            raise ReleaseRefused(f"release {release_id} is no longer the newest version in force; promote another")
        earlier = rows[1] if len(rows) > 1 else None
        shipped = config.filters if release.kind == "filters" else config.classification
        document = earlier.document if earlier is not None else document_of(shipped)
        back_to = earlier.release_id if earlier is not None else SHIPPED
        releases.put_in_force(release.kind, document, back_to, actor, f"rollback of release {release_id}: {note}")
        releases.set_status(release_id, "rolled_back")
        now = in_force(store, config)[0 if release.kind == "filters" else 1].version
    else:
        raise ReleaseRefused(f"release {release_id} is {release.status}: nothing to roll back")
    record(
        store,
        actor,
        "release.rollback",
        f"release:{release_id}",
        {"status": release.status},
        {"status": "rolled_back", "in_force": now},
        note,
    )
    return now


def describe(release: Release) -> dict[str, Any]:
    return {
        "release_id": release.release_id,
        "kind": release.kind,
        "label": release.label,
        "status": release.status,
        "share": release.share,
        "author": release.author,
        "notes": release.notes,
        "created_at": release.created_at.isoformat(),
        "trial_started_at": release.trial_started_at.isoformat() if release.trial_started_at else None,
    }
