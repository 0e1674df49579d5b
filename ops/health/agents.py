"""Agent health: the latest window of each agent (table `agent_metrics`), judged against its latency budget."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.event import as_utc
from ops.health.report import AgentHealth
from store.hot import HotStore


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
