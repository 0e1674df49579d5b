"""The incident severity the panels, the agents and the latest injection test add up to, and `evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from config.settings import NightwatchConfig
from core.event import as_utc
from core.night import observing_night
from ops import intake
from ops.health.agents import agent_health
from ops.health.faults import recent_faults
from ops.health.panels import five_panels, latest_activity
from ops.health.report import (
    ALERTS_PER_NIGHT,
    CRITICAL_RECALL,
    ERROR_RATE,
    MAJOR_FACTOR,
    QUEUE_DEPTH,
    QUEUE_MAJOR_FACTOR,
    RUNBOOKS,
    AgentHealth,
    HealthReport,
    Panel,
    Runbook,
    runbooks_of,
)
from ops.health.schedule import expectations, last_seen_by_source
from ops.queue_depth import queue_depth_reader
from store.hot import HotStore
from store.schema import injection_reports


def _critical_recall(store: HotStore) -> float | None:
    """The latest stored injection report's critical recall (`nightwatch inject` writes them)."""
    with store.engine.connect() as conn:
        # The latest report that measured it (a run with no critical event injected stores None).
        value = conn.execute(
            sa.select(injection_reports.c.critical_recall)
            .where(injection_reports.c.critical_recall.is_not(None))
            .order_by(injection_reports.c.created_at.desc())
            .limit(1)
        ).scalar()
    return None if value is None else float(value)


def severity(
    panels: list[Panel],
    agents: AgentHealth,
    stale: bool,
    expected_total: float,
    recall: float | None,
    idle: str,
    faults: Sequence[str] = (),
    silent: str = "",
) -> tuple[str | None, str, Runbook | None]:
    """The guide's severity levels from the panels: the highest level any finding reaches, and every finding.

    SEV-1 (system down): nothing processed in the window while sources expected to send now have been silent
    past their `silent_after_min`: `expected_total` is their expected rate, `silent` names them and why they
    are expected (night at the site, around the clock).
    SEV-3 (minor issue): a panel out of its normal range (alert volume included: review thresholds) or an agent
    over budget. SEV-4 (cosmetic / dashboard glitch): only the console's own faults (`faults`)."""
    by_name = {panel.name: panel for panel in panels}
    if stale and expected_total > 0:
        expecting = silent or f"sources expect {expected_total:,.1f}/min"
        return "SEV-1", f"no events processing: {idle}, while {expecting}", RUNBOOKS["sev1"]
    major, minor = [], []
    errors, queue = by_name["Error rate"], by_name["Queue depth"]
    if errors.value is not None and errors.value >= MAJOR_FACTOR * ERROR_RATE:
        major.append(f"error rate {errors.value:.2%} is over {MAJOR_FACTOR}x its normal range (< 0.1%)")
    if queue.value is not None and queue.value >= QUEUE_MAJOR_FACTOR * QUEUE_DEPTH:
        major.append(f"queue depth {queue.value:,.0f} is over {QUEUE_MAJOR_FACTOR}x its normal range (< 10,000)")
    if recall is not None and recall < CRITICAL_RECALL:
        major.append(f"latest injection test: critical recall {recall:.1%} < 99%")
    if major:
        return "SEV-2", "; ".join(major), RUNBOOKS["sev2"]
    for name in ("Event rate", "Processing latency", "Error rate", "Queue depth"):
        panel = by_name[name]
        if panel.abnormal:
            minor.append(f"{name.lower()} {panel.display} outside its normal range ({panel.normal})")
    volume = by_name["Alert volume"]
    if volume.abnormal:
        minor.append(f"alert volume {volume.display} over {ALERTS_PER_NIGHT} a night: review thresholds")
    for agent, status in agents.status.items():
        if status == "bad":
            minor.append(f"agent {agent} over its latency budget or its breaker is open")
    if minor:
        # The runbook of the first abnormal panel (alert volume alone: review thresholds), or the agents'.
        first = next((panel.runbook for panel in panels if panel.abnormal), None)
        return "SEV-3", "; ".join(minor), first or agents.runbook
    cosmetic = list(faults)
    if cosmetic:
        return "SEV-4", "; ".join(cosmetic), RUNBOOKS["sev4"]
    return None, "every panel is within its normal range", None


def evaluate(
    store: HotStore,
    config: NightwatchConfig,
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    history: timedelta = timedelta(hours=6),
    night: str | None = None,
) -> HealthReport:
    """The five panels over the recent `window` (charts over `history`), agent health and the severity. The alert
    volume is tonight's (the site's observing night holding `now`), or that of the `night` chosen."""
    now = as_utc(now)
    paused = sorted(intake.paused_sources(store, tuple(config.sources.sources)))
    # Day and night: only the sources expected to send now are judged (their rate and their silence).
    schedule = expectations(config.sources, now, last_seen_by_source(store, now), paused)
    expected = {name: entry.rate_per_min for name, entry in schedule.items()}
    latest = latest_activity(store)
    stale = latest is None or latest < now - window
    end = now if not stale or latest is None else latest
    start = end - window
    series_start = end - history
    timezone = config.sources.site.timezone
    night = night or observing_night(now, timezone)
    depth = queue_depth_reader(config.streaming, store)  # the emulator's count, Cloud Monitoring or Kafka lag
    basis, panels = five_panels(store, expected, start, end, series_start, night, latest is not None, depth)
    agents = agent_health(store, since=series_start)
    if latest is None:
        idle = "nothing has been processed yet (the store is empty)"
    else:
        idle = f"nothing processed since {latest:%Y-%m-%d %H:%M:%S} UTC ({_ago(now - latest)} ago)"
    # A source whose intake an operator paused is expected to send nothing: its silence is not an outage; nor is
    # an optical survey's in daytime, nor a sparse stream's shorter than its own silent_after_min.
    silent = [entry for entry in schedule.values() if entry.silent(now)]
    expected_total = sum(entry.rate_per_min for entry in silent)
    silent_note = (
        "; ".join(
            f"{entry.source} expects {entry.rate_per_min:,.1f}/min ({entry.why}) and has been silent "
            f"{'(nothing stored yet)' if entry.last_seen is None else 'since ' + f'{entry.last_seen:%H:%M} UTC'}"
            for entry in silent
        )
        if silent
        else ""
    )
    faults = [fault.describe() for fault in recent_faults(store, now)]
    level, reason, runbook = severity(
        panels, agents, stale, expected_total, _critical_recall(store), idle, faults, silent_note
    )
    if stale and not silent and level is None:
        reason = f"quiet, as expected: {idle}; no source is expected to be sending now"
    # The runbooks of this configuration (`--config DIR`, or a stored version), in place of the shipped ones.
    book = runbooks_of(config.runbooks)
    for panel in panels:
        panel.runbook = book.get(panel.runbook.key, panel.runbook)
    agents.runbook = book.get(agents.runbook.key, agents.runbook)
    runbook = book.get(runbook.key, runbook) if runbook else None
    note = ""
    if paused:
        changed = {row.source: row for row in intake.rows(store) if row.paused}
        who = changed.get(intake.ALL) or next(iter(changed.values()), None)
        note = f"intake paused: {', '.join(paused)}" + (
            f" (by {who.changed_by} at {as_utc(who.changed_at):%Y-%m-%d %H:%M} UTC"
            + (f": {who.reason}" if who.reason else "")
            + "); resume with `nightwatch intake resume`"
            if who
            else ""
        )
    return HealthReport(
        now,
        start,
        end,
        stale,
        basis,
        panels,
        agents,
        level,
        reason,
        runbook,
        intake_paused=paused,
        intake_note=note,
        contacts=config.sources.contacts(),
        contact_book={name: config.contacts.describe(name) for name in sorted(config.contacts.names())},
        config_version=config.config_version,
        schedule={name: entry.describe(now) for name, entry in schedule.items()},
    )


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
