"""The guide's five monitoring panels, from the streaming job's 1-minute windows (table `metrics`) or, after
batch runs, from the stored events and dead letters."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.event import as_utc
from ops.health.report import (
    ALERTS_PER_NIGHT,
    ERROR_RATE,
    LATENCY_P50_S,
    MIN_EXPECTED_FOR_RATE,
    QUEUE_DEPTH,
    RATE_TOLERANCE,
    RUNBOOKS,
    WARN_AT,
    Panel,
    judge,
    worst,
)
from ops.queue_depth import PublishedMinusReceived, QueueDepth
from store.hot import HotStore
from store.schema import alerts, dead_letters, events, metrics

# --- reading the store -----------------------------------------------------------------------------------------


def latest_activity(store: HotStore) -> datetime | None:
    """When anything was last stored: an event, a stream window or a dead letter."""
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
    # Only unresolved letters: one whose event a rerun stored after all is not an error any more.
    query = sa.select(dead_letters.c.source, dead_letters.c.received_time).where(
        (dead_letters.c.received_time >= start)
        & (dead_letters.c.received_time <= end)
        & dead_letters.c.resolved_at.is_(None)
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
        + ", ".join(f"{source} {rate:g}" if rate else f"{source} not expected now" for source, rate in expected.items())
        + ")",
        status=worst([status for status in source_status.values() if status != "n/a"]) if source_status else "n/a",
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
        status=judge(p50, LATENCY_P50_S),
        action="Check for backlog",
        runbook=RUNBOOKS["latency"],
        by_source=by_source,
        source_status={source: judge(value, LATENCY_P50_S) for source, value in by_source.items()},
        series=series,
        detail=how,
    )


def _queue_panel(depth: QueueDepth, sources: list[str], series: list[dict[str, Any]]) -> Panel:
    by_source = depth.depths(sources)
    known = [value for value in by_source.values() if value is not None]
    total = float(sum(known)) if known else None
    return Panel(
        name="Queue depth",
        value=total,
        display="no queue measured" if total is None else f"{total:,.0f} messages",
        normal="< 10,000",
        status="n/a" if total is None else judge(total, QUEUE_DEPTH),
        action="Scale up if needed",
        runbook=RUNBOOKS["high_queue_depth"],
        by_source={source: None if value is None else float(value) for source, value in by_source.items()},
        source_status={
            source: "n/a" if value is None else judge(value, QUEUE_DEPTH) for source, value in by_source.items()
        },
        series=series,
        detail="published to each source's topic minus received locally; Cloud Monitoring's "
        "num_undelivered_messages or Kafka's consumer lag in production (streaming.yaml: queue_depth); batch runs "
        "read files and have no queue",
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
        status=judge(rate, ERROR_RATE),
        action="Investigate errors",
        runbook=RUNBOOKS["error_rate"],
        by_source=by_source,
        source_status={source: judge(value, ERROR_RATE) for source, value in by_source.items()},
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
        status=judge(tonight, ALERTS_PER_NIGHT),
        action="Review thresholds",
        runbook=RUNBOOKS["alert_volume"],
        by_source=by_source,
        source_status={source: judge(value, ALERTS_PER_NIGHT) for source, value in by_source.items()},
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


def five_panels(
    store: HotStore,
    expected: dict[str, float],
    start: datetime,
    end: datetime,
    series_start: datetime,
    night: str,
    has_data: bool,
    depth: QueueDepth | None = None,
) -> tuple[str, list[Panel]]:
    """The panels over `start`..`end` (charts from `series_start`), and what they were computed from: "stream
    metrics" when the streaming job wrote windows in it, else "stored events" (or "no data" in an empty store).
    The alert volume is `night`'s (tonight, unless another night is chosen)."""
    metric_rows = _metric_rows(store, series_start, end)
    recent_metrics = [row for row in metric_rows if as_utc(row.updated_at) >= start]
    if recent_metrics:
        basis = "stream metrics"
        rate, latency, errors, _nights = _from_metrics(metric_rows, start, end, expected, metric_rows)
    else:
        basis = "stored events" if has_data else "no data"
        rate, latency, errors, _nights = _from_events(store, start, end, series_start, expected)
    panels = [
        rate,
        latency,
        _queue_panel(depth or PublishedMinusReceived(store), list(expected), _queue_series(metric_rows)),
        errors,
        _alert_volume_panel(store, night),
    ]
    return basis, panels
