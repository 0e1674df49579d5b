"""System health: the guide's five monitoring panels, agent health, and the incident severity they add up to.

`evaluate(store, config, now)` reads the hot store and returns a `HealthReport`: each panel's current value,
normal range, status, the guide's "action if abnormal" with the matching runbook, a per-source breakdown and
a time series; then the current severity (SEV-1..SEV-4 or none) with its reason. It changes nothing, so the
console, `nightwatch health` and tests can all call it.

Where the figures come from: a streaming run writes per-source 1-minute windows to the `metrics` table, and
those are used when present. A batch run writes none, so the same panels are computed from the stored events
and dead letters: event rate from receipt times, processing latency as stored_at - received_time (not
received - event time, which measures the source's delay, not ours), error rate as dead letters over
everything received.

The figures describe the recent window (default 15 minutes) up to `now`. When nothing has been processed in
it, the panels show the last active window instead (so an operator sees what the system did last) and the
severity is SEV-1: no events processing while the sources are expected to send.

Modules: `report` (normal ranges, the runbooks of config/runbooks.yaml, the report's dataclasses), `panels`
(the five panels), `agents` (agent health), `faults` (the console's own faults, recorded as they happen: the only
source of SEV-4), `evaluate` (severity and `evaluate`).
"""

from ops.health.agents import agent_health
from ops.health.evaluate import evaluate, severity
from ops.health.report import RUNBOOKS, AgentHealth, HealthReport, Panel, Runbook, runbook_contacts

__all__ = [
    "RUNBOOKS",
    "AgentHealth",
    "HealthReport",
    "Panel",
    "Runbook",
    "agent_health",
    "evaluate",
    "runbook_contacts",
    "severity",
]
