"""System health: the guide's five monitoring panels, agent health, and the incident severity they add up to.

`evaluate(store, config, now)` reads the hot store and returns a `HealthReport`: each panel's current value,
normal range, status, the guide's "action if abnormal" with the matching runbook, a per-source breakdown and
a time series; then the current severity (SEV-1..SEV-4 or none) with its reason. It changes nothing, so the
console, a future `nightwatch health` command and tests can all call it.

Where the figures come from: a streaming run writes per-source 1-minute windows to the `metrics` table, and
those are used when present. A batch run writes none, so the same panels are computed from the stored events
and dead letters: event rate from receipt times, processing latency as stored_at - received_time (not
received - event time, which measures the source's delay, not ours), error rate as dead letters over
everything received.

The figures describe the recent window (default 15 minutes) up to `now`. When nothing has been processed in
it, the panels show the last active window instead (so an operator sees what the system did last) and the
severity is SEV-1: no events processing while the sources are expected to send.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from config.settings import NightwatchConfig
from core.event import as_utc
from core.night import observing_night
from store.hot import HotStore
from store.schema import alerts, dead_letters, events, injection_reports, metrics

# The guide's normal ranges.
RATE_TOLERANCE = 0.20  # event rate within ±20% of expected
LATENCY_P50_S = 60.0  # processing latency p50 < 1 min
QUEUE_DEPTH = 10_000  # queue depth < 10,000
ERROR_RATE = 0.001  # error rate < 0.1%
ALERTS_PER_NIGHT = 50  # alert volume < 50 a night
# "Major degradation" (SEV-2): this many times beyond the normal range.
MAJOR_FACTOR = 10
QUEUE_MAJOR_FACTOR = 5
CRITICAL_RECALL = 0.99  # the guide's SEV-2 example: critical recall < 99%
# A rate check needs enough expected events in the window to mean anything: a GCN stream expecting 0.1 a
# minute sees 0 or 3 in 15 minutes by chance alone, which is not a ±20% deviation worth an incident.
MIN_EXPECTED_FOR_RATE = 20
WARN_AT = 0.8  # amber at 80% of a limit

STATUS_ORDER = ("ok", "n/a", "unknown", "warn", "bad")


@dataclass(frozen=True)
class Runbook:
    title: str
    symptoms: str
    steps: tuple[str, ...]


# The guide's runbooks and procedures, word for word where it has them.
RUNBOOKS: dict[str, Runbook] = {
    "high_queue_depth": Runbook(
        "Runbook: High Queue Depth",
        "Queue depth >10,000",
        (
            "Check processing worker status",
            "Check for error spike",
            "Scale up workers if healthy",
            "If errors, identify source",
            "If data source issue, contact source",
            "Monitor until queue drains",
        ),
    ),
    "critical_alert_not_sent": Runbook(
        "Runbook: Critical Alert Not Sent",
        "Critical event detected but no alert",
        (
            "Check alert service status",
            "Check alert thresholds",
            "Check notification channels",
            "Manually send alert if critical",
            "Fix underlying issue",
            "Post-incident review",
        ),
    ),
    "agent_timeout": Runbook(
        "Runbook: Agent Timeout",
        "Agent exceeding latency budget",
        (
            "Identify which agent",
            "Check agent resource usage",
            "Restart agent if stuck",
            "Scale agent if resource-bound",
            "Check for data causing slow processing",
            "Consider skipping agent for critical events",
        ),
    ),
    # Panels without a runbook of their own follow the guide's Common Issues table and SEV procedures.
    "event_rate": Runbook(
        "Common issue: missed events",
        "Event rate outside ±20% of expected",
        (
            "Check data sources (guide: action if abnormal)",
            "Missed events: threshold too high -> lower threshold",
            "Processing errors: bad data -> check data source",
            "If no events at all: follow the SEV-1 procedure",
        ),
    ),
    "latency": Runbook(
        "Common issue: high latency",
        "Processing latency p50 >= 1 min",
        (
            "Check for backlog (guide: action if abnormal)",
            "High latency: queue backup -> scale up workers",
            "Auto-scaling: scale up when latency > 2 min, down when < 30 s",
        ),
    ),
    "error_rate": Runbook(
        "Common issue: processing errors",
        "Error rate >= 0.1%",
        (
            "Investigate errors (guide: action if abnormal): read the dead letters' stage and reason",
            "Processing errors: bad data -> check data source",
            "If a source sends bad data, contact the source (dataops@source.org)",
        ),
    ),
    "alert_volume": Runbook(
        "Common issue: too many alerts",
        "Alert volume >= 50 a night",
        (
            "Review thresholds (guide: action if abnormal)",
            "Too many alerts: threshold too low -> raise threshold (Thresholds page, with a preview)",
            "Missed events: threshold too high -> lower threshold",
        ),
    ),
    "sev1": Runbook(
        "SEV-1: System Down",
        "System down, no events processing",
        (
            "Acknowledge alert",
            "Assess scope (which components affected?)",
            "Check recent changes (deployments, config)",
            "Engage additional responders if needed",
            "Implement fix or rollback",
            "Verify recovery",
            "Document incident",
            "Escalation: 15 min page backup on-call; 30 min engineering lead; 1 hour director",
        ),
    ),
    "sev2": Runbook(
        "SEV-2: Major Degradation",
        "Major degradation, missing events",
        (
            "Acknowledge alert",
            "Identify affected functionality",
            "Check metrics for root cause",
            "Implement mitigation",
            "Schedule permanent fix",
            "Document incident",
        ),
    ),
}


@dataclass
class Panel:
    """One monitoring panel as the guide defines it, evaluated."""

    name: str
    value: float | None
    normal: str
    status: str  # ok | warn | bad | unknown | n/a
    action: str  # the guide's "action if abnormal"
    runbook: Runbook
    by_source: dict[str, float | None] = field(default_factory=dict)
    display: str = ""  # the value as shown, with its unit
    detail: str = ""  # what the figure is and where it comes from
    source_status: dict[str, str] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)  # {"time", "source", "value"} rows for a chart

    @property
    def abnormal(self) -> bool:
        return self.status == "bad"


@dataclass
class AgentHealth:
    """The latest window of each agent (table `agent_metrics`), judged against its latency budget."""

    rows: list[dict[str, Any]]
    series: list[dict[str, Any]]
    status: dict[str, str]
    message: str  # "no agent metrics yet" when there is nothing to show
    runbook: Runbook = RUNBOOKS["agent_timeout"]


@dataclass
class HealthReport:
    now: datetime
    window_start: datetime
    window_end: datetime
    stale: bool  # nothing processed in the recent window: the panels show the last active window
    basis: str  # "stream metrics" | "stored events" | "no data"
    panels: list[Panel]
    agents: AgentHealth
    severity: str | None  # "SEV-1" .. "SEV-4", or None when all is normal
    reason: str
    runbook: Runbook | None = None

    def panel(self, name: str) -> Panel:
        return next(panel for panel in self.panels if panel.name == name)


# --- reading the store -----------------------------------------------------------------------------------------


def _latest_activity(store: HotStore) -> datetime | None:
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.max(events.c.stored_at))).scalar()
        windows = conn.execute(sa.select(sa.func.max(metrics.c.updated_at))).scalar()
        letters = conn.execute(sa.select(sa.func.max(dead_letters.c.stored_at))).scalar()
    moments = [as_utc(moment) for moment in (stored, windows, letters) if moment is not None]
    return max(moments) if moments else None


def _event_times(store: HotStore, start: datetime, end: datetime, limit: int = 100_000) -> list[Any]:
    query = (
        sa.select(events.c.source, events.c.received_time, events.c.stored_at, events.c.night)
        .where((events.c.received_time >= start) & (events.c.received_time <= end))
        .order_by(events.c.received_time.desc())
        .limit(limit)  # a bound on memory; a production store has stream metrics and does not come here
    )
    with store.engine.connect() as conn:
        return conn.execute(query).all()


def _letter_times(store: HotStore, start: datetime, end: datetime) -> list[Any]:
    query = sa.select(dead_letters.c.source, dead_letters.c.received_time).where(
        (dead_letters.c.received_time >= start) & (dead_letters.c.received_time <= end)
    )
    with store.engine.connect() as conn:
        return conn.execute(query).all()


def _metric_rows(store: HotStore, start: datetime, end: datetime) -> list[Any]:
    query = (
        sa.select(metrics)
        .where((metrics.c.updated_at >= start) & (metrics.c.updated_at <= end))
        .order_by(metrics.c.window_start)
    )
    with store.engine.connect() as conn:
        return conn.execute(query).all()


def _minute(moment: datetime) -> datetime:
    return as_utc(moment).replace(second=0, microsecond=0)


def _status(value: float | None, limit: float) -> str:
    """Against an upper limit: ok below 80% of it, warn up to it, bad beyond."""
    if value is None:
        return "unknown"
    if value >= limit:
        return "bad"
    return "warn" if value >= WARN_AT * limit else "ok"


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUS_ORDER.index) if statuses else "unknown"


def _fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}/min"


# --- the panels -------------------------------------------------------------------------------------------------


def _rate_panel(
    received: dict[str, int], minutes: float, expected: dict[str, float], series: list[dict[str, Any]]
) -> Panel:
    by_source: dict[str, float | None] = {}
    source_status: dict[str, str] = {}
    for source, want in expected.items():
        rate = received.get(source, 0) / minutes if minutes > 0 else None
        by_source[source] = rate
        if rate is None:
            source_status[source] = "unknown"
        elif want * minutes < MIN_EXPECTED_FOR_RATE:
            source_status[source] = "n/a"
        else:
            deviation = abs(rate - want) / want
            source_status[source] = (
                "bad" if deviation > RATE_TOLERANCE else "warn" if deviation > WARN_AT * RATE_TOLERANCE else "ok"
            )
    total = sum(value for value in by_source.values() if value is not None) if minutes > 0 else None
    want_total = sum(expected.values())
    deviation = f" ({(total - want_total) / want_total:+.0%} of expected)" if total is not None and want_total else ""
    return Panel(
        name="Event rate",
        value=total,
        display=_fmt_rate(total) + deviation,
        normal=f"±20% of expected ({want_total:,.1f}/min: "
        + ", ".join(f"{source} {rate:g}" for source, rate in expected.items())
        + ")",
        status=_worst([status for status in source_status.values() if status != "n/a"]) if source_status else "n/a",
        action="Check data sources",
        runbook=RUNBOOKS["event_rate"],
        by_source=by_source,
        source_status=source_status,
        series=series,
        detail=f"events received per minute over {minutes:.1f} min; sources expecting fewer than "
        f"{MIN_EXPECTED_FOR_RATE} events in the window are shown but not judged",
    )


def _latency_panel(p50: float | None, by_source: dict[str, float | None], series: list[dict[str, Any]], how: str):
    return Panel(
        name="Processing latency",
        value=p50,
        display="–" if p50 is None else f"{p50:.2f} s (p50)",
        normal="< 1 min (p50)",
        status=_status(p50, LATENCY_P50_S),
        action="Check for backlog",
        runbook=RUNBOOKS["latency"],
        by_source=by_source,
        source_status={source: _status(value, LATENCY_P50_S) for source, value in by_source.items()},
        series=series,
        detail=how,
    )


def _queue_panel(store: HotStore, sources: list[str], series: list[dict[str, Any]]) -> Panel:
    by_source = {source: store.queue_depth(source) for source in sources}
    known = [value for value in by_source.values() if value is not None]
    total = float(sum(known)) if known else None
    return Panel(
        name="Queue depth",
        value=total,
        display="no queue measured" if total is None else f"{total:,.0f} messages",
        normal="< 10,000",
        status="n/a" if total is None else _status(total, QUEUE_DEPTH),
        action="Scale up if needed",
        runbook=RUNBOOKS["high_queue_depth"],
        by_source={source: None if value is None else float(value) for source, value in by_source.items()},
        source_status={
            source: "n/a" if value is None else _status(value, QUEUE_DEPTH) for source, value in by_source.items()
        },
        series=series,
        detail="published to each source's topic minus received (Cloud Monitoring's num_undelivered_messages in "
        "production); batch runs read files and have no queue",
    )


def _error_panel(received: dict[str, int], failed: dict[str, int], series: list[dict[str, Any]]) -> Panel:
    total = sum(received.values())
    rate = sum(failed.values()) / total if total else None
    by_source = {source: (failed.get(source, 0) / count if count else None) for source, count in received.items()}
    return Panel(
        name="Error rate",
        value=rate,
        display="–" if rate is None else f"{rate:.2%} ({sum(failed.values())} of {total:,})",
        normal="< 0.1%",
        status=_status(rate, ERROR_RATE),
        action="Investigate errors",
        runbook=RUNBOOKS["error_rate"],
        by_source=by_source,
        source_status={source: _status(value, ERROR_RATE) for source, value in by_source.items()},
        series=series,
        detail="dead letters / packets received (events + dead letters)",
    )


def _alert_volume_panel(store: HotStore, night: str) -> Panel:
    volume = store.alert_volume_by_night()
    tonight = volume.get(night, 0)
    query = (
        sa.select(events.c.source, sa.func.count())
        .select_from(alerts.join(events, events.c.event_id == alerts.c.event_id))
        .where((events.c.night == night) & alerts.c.injected.is_(False))
        .group_by(events.c.source)
    )
    with store.engine.connect() as conn:
        by_source = {source: float(count) for source, count in conn.execute(query)}
    return Panel(
        name="Alert volume",
        value=float(tonight),
        display=f"{tonight} alerts (night {night})",
        normal="< 50 a night",
        status=_status(tonight, ALERTS_PER_NIGHT),
        action="Review thresholds",
        runbook=RUNBOOKS["alert_volume"],
        by_source=by_source,
        source_status={source: _status(value, ALERTS_PER_NIGHT) for source, value in by_source.items()},
        series=[{"time": name, "source": "all", "value": count} for name, count in volume.items()],
        detail="CRITICAL and HIGH alerts of the observing night (injected test alerts excluded)",
    )


def _from_events(store: HotStore, start: datetime, end: datetime, series_start: datetime, expected: dict[str, float]):
    """Rate, latency and error panels computed from stored events and dead letters (batch runs)."""
    rows = _event_times(store, series_start, end)
    letters = _letter_times(store, series_start, end)
    in_window = [row for row in rows if as_utc(row.received_time) >= start]
    letters_in = [row for row in letters if as_utc(row.received_time) >= start]
    received: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    latencies: dict[str, list[float]] = defaultdict(list)
    for row in in_window:
        received[row.source] += 1
        latencies[row.source].append((as_utc(row.stored_at) - as_utc(row.received_time)).total_seconds())
    for row in letters_in:
        received[row.source] += 1
        failed[row.source] += 1
    first = min((_minute(row.received_time) for row in [*in_window, *letters_in]), default=None)
    minutes = max(1.0, (end - first).total_seconds() / 60.0) if first else 0.0

    # Per-minute series over the longer span.
    counts: dict[tuple[datetime, str], int] = defaultdict(int)
    errs: dict[tuple[datetime, str], int] = defaultdict(int)
    lat: dict[tuple[datetime, str], list[float]] = defaultdict(list)
    for row in rows:
        key = (_minute(row.received_time), row.source)
        counts[key] += 1
        lat[key].append((as_utc(row.stored_at) - as_utc(row.received_time)).total_seconds())
    for row in letters:
        key = (_minute(row.received_time), row.source)
        counts[key] += 1
        errs[key] += 1
    rate_series = [{"time": t, "source": s, "value": float(n)} for (t, s), n in sorted(counts.items())]
    latency_series = [{"time": t, "source": s, "value": statistics.median(v)} for (t, s), v in sorted(lat.items())]
    error_series = [{"time": t, "source": s, "value": errs.get((t, s), 0) / n} for (t, s), n in sorted(counts.items())]

    every = [value for values in latencies.values() for value in values]
    p50 = statistics.median(every) if every else None
    latency = _latency_panel(
        p50,
        {source: statistics.median(values) for source, values in latencies.items()},
        latency_series,
        "median of stored_at - received_time over the events of the window",
    )
    nights = sorted({row.night for row in in_window if row.night})
    return (
        _rate_panel(received, minutes, expected, rate_series),
        latency,
        _error_panel(dict(received), dict(failed), error_series),
        nights,
    )


def _from_metrics(rows: list[Any], start: datetime, end: datetime, expected: dict[str, float], series_rows: list[Any]):
    """Rate, latency and error panels from the streaming job's 1-minute windows."""
    in_window = [row for row in rows if as_utc(row.updated_at) >= start]
    totals: dict[str, int] = defaultdict(int)  # received counts events and dead letters alike
    failed: dict[str, int] = defaultdict(int)
    weighted: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for row in in_window:
        totals[row.source] += row.received
        failed[row.source] += row.dead_letters
        if row.latency_p50_s is not None:
            weighted[row.source].append((row.latency_p50_s, max(1, row.stored)))
    # Windows are in event time; the rate is what the windows counted over the minutes they span.
    if in_window:
        span = max(as_utc(row.window_end) for row in in_window) - min(as_utc(row.window_start) for row in in_window)
        minutes = max(1.0, span.total_seconds() / 60.0)
    else:
        minutes = 0.0

    def mean(pairs: list[tuple[float, int]]) -> float | None:
        weight = sum(n for _, n in pairs)
        return sum(value * n for value, n in pairs) / weight if weight else None

    by_source = {source: mean(pairs) for source, pairs in weighted.items()}
    p50 = mean([pair for pairs in weighted.values() for pair in pairs])
    rate_series = [
        {"time": as_utc(row.window_start), "source": row.source, "value": row.rate_per_min} for row in series_rows
    ]
    latency_series = [
        {"time": as_utc(row.window_start), "source": row.source, "value": row.latency_p50_s}
        for row in series_rows
        if row.latency_p50_s is not None
    ]
    error_series = [
        {"time": as_utc(row.window_start), "source": row.source, "value": row.error_rate or 0.0} for row in series_rows
    ]
    latency = _latency_panel(p50, by_source, latency_series, "p50 publish-to-sink of the 1-minute stream windows")
    nights = sorted({row.night for row in in_window if row.night})
    return (
        _rate_panel(totals, minutes, expected, rate_series),
        latency,
        _error_panel(dict(totals), dict(failed), error_series),
        nights,
    )


def _queue_series(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {"time": as_utc(row.window_start), "source": row.source, "value": float(row.queue_depth)}
        for row in rows
        if row.queue_depth is not None
    ]


# --- agents -------------------------------------------------------------------------------------------------


def agent_health(store: HotStore, since: datetime | None = None) -> AgentHealth:
    """Latest window per agent from `agent_metrics` (written by the agents step)."""
    rows = store.agent_windows(since)
    if not rows:
        return AgentHealth([], [], {}, "no agent metrics yet")
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["agent"]] = row
    status = {}
    for name, row in latest.items():
        over_budget = row.get("latency_p95_ms") is not None and row["latency_p95_ms"] > row["budget_ms"]
        if row.get("breaker_state") == "open" or over_budget:
            status[name] = "bad"
        elif row.get("breaker_state") == "half_open" or (row.get("timeouts") or 0) > 0:
            status[name] = "warn"
        else:
            status[name] = "ok"
    series = [
        {"time": as_utc(row["window_end"]), "agent": row["agent"], "p95_ms": row["latency_p95_ms"]}
        for row in rows
        if row.get("latency_p95_ms") is not None
    ]
    return AgentHealth(list(latest.values()), series, status, "")


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


# --- severity ---------------------------------------------------------------------------------------------------


def severity(
    panels: list[Panel], agents: AgentHealth, stale: bool, expected_total: float, recall: float | None, idle: str
) -> tuple[str | None, str, Runbook | None]:
    """The guide's severity levels from the panels: the highest level any finding reaches, and every finding."""
    by_name = {panel.name: panel for panel in panels}
    if stale and expected_total > 0:
        return (
            "SEV-1",
            f"no events processing: {idle}, while sources expect {expected_total:,.1f}/min",
            RUNBOOKS["sev1"],
        )
    major, minor, cosmetic = [], [], []
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
    for agent, status in agents.status.items():
        if status == "bad":
            minor.append(f"agent {agent} over its latency budget or its breaker is open")
    if minor:
        return "SEV-3", "; ".join(minor), None
    volume = by_name["Alert volume"]
    if volume.abnormal:
        cosmetic.append(f"alert volume {volume.display} over {ALERTS_PER_NIGHT} a night: review thresholds")
    if cosmetic:
        return "SEV-4", "; ".join(cosmetic), None
    return None, "every panel is within its normal range", None


def evaluate(
    store: HotStore,
    config: NightwatchConfig,
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    history: timedelta = timedelta(hours=6),
) -> HealthReport:
    """The five panels over the recent `window` (charts over `history`), agent health and the severity."""
    now = as_utc(now)
    expected = {name: spec.expected_rate_per_min for name, spec in config.sources.sources.items()}
    latest = _latest_activity(store)
    stale = latest is None or latest < now - window
    end = now if not stale or latest is None else latest
    start = end - window
    series_start = end - history
    metric_rows = _metric_rows(store, series_start, end)
    recent_metrics = [row for row in metric_rows if as_utc(row.updated_at) >= start]
    if recent_metrics:
        basis = "stream metrics"
        rate, latency, errors, nights = _from_metrics(metric_rows, start, end, expected, metric_rows)
    else:
        basis = "stored events" if latest is not None else "no data"
        rate, latency, errors, nights = _from_events(store, start, end, series_start, expected)
    night = nights[-1] if nights else observing_night(end, config.sources.site.timezone)
    panels = [
        rate,
        latency,
        _queue_panel(store, list(expected), _queue_series(metric_rows)),
        errors,
        _alert_volume_panel(store, night),
    ]
    agents = agent_health(store, since=series_start)
    if latest is None:
        idle = "nothing has been processed yet (the store is empty)"
    else:
        idle = f"nothing processed since {latest:%Y-%m-%d %H:%M:%S} UTC ({_ago(now - latest)} ago)"
    level, reason, runbook = severity(panels, agents, stale, sum(expected.values()), _critical_recall(store), idle)
    return HealthReport(now, start, end, stale, basis, panels, agents, level, reason, runbook)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
