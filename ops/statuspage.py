"""The public status page's content: each component's state, the incidents not yet resolved (and those resolved
in the last day) with their latest public update, and the latest notices; and publishing an update to it.

What a visitor reads is built here from fixed phrases and from text people chose to publish, never from internal
findings: no names, addresses, hosts, figures, reasons or notes. An incident shows its public name, severity,
state, times, the components it touches and its public updates (written by the incident's own steps:
investigating, identified, resolved; and published notes). Publishing ("Update status page" of the handoff)
needs the Operator role (`respond_incidents`) and is audited; the author is never shown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from access.accounts import acting
from access.audit import audit
from access.roles import AccessError
from config.settings import NightwatchConfig
from core.event import as_utc, utcnow
from ops.health import HealthReport, evaluate
from ops.health.schedule import expectations, last_seen_by_source
from ops.workers import notifier_status
from store.hot import HotStore
from store.schema import incidents, status_updates

OPERATIONAL, DEGRADED, OUTAGE, IDLE, PAUSED, UNKNOWN = (
    "operational",
    "degraded",
    "outage",
    "not observing",
    "paused",
    "not monitored",
)
RANK = {OPERATIONAL: 0, IDLE: 0, UNKNOWN: 0, PAUSED: 1, DEGRADED: 2, OUTAGE: 3}
MAX_TEXT = 1000
RECENT = timedelta(hours=24)  # resolved incidents stay on the page this long

# What each severity means to a visitor (the guide's definitions, in public words).
PUBLIC_TITLES = {
    "SEV-1": "System down: events are not being processed",
    "SEV-2": "Major degradation: some events may be missing or late",
    "SEV-3": "Minor degradation: processing may be slower than usual",
    "SEV-4": "Minor issue with the operations console",
}
# The incident's own steps, as a visitor reads them.
INVESTIGATING = "Investigating: we are aware of the problem and are looking into it."
IDENTIFIED = "Identified: responders are working on it."
RESOLVED = "Resolved: the service has recovered."


# --- publishing ---------------------------------------------------------------------------------------------------


def post(conn: Connection, at: datetime, author: str, text: str, incident_id: int | None, kind: str) -> None:
    """One update, in the caller's transaction (the incident's own steps call this with their change)."""
    conn.execute(
        status_updates.insert().values(at=at, kind=kind, incident_id=incident_id, text=text[:MAX_TEXT], author=author)
    )


def publish(
    store: HotStore, actor: str, text: str, incident_id: int | None = None, kind: str = "notice"
) -> dict[str, Any]:
    """A person publishes an update (a handoff's "Update status page", an incident note made public)."""
    acting(store, actor, "respond_incidents")
    text = text.strip()
    if not text:
        raise AccessError("a status update needs its text")
    if len(text) > MAX_TEXT:
        raise AccessError(f"a status update is at most {MAX_TEXT} characters (this one is {len(text)})")
    if kind not in ("notice", "handoff", "incident"):
        raise AccessError(f"unknown kind of update {kind!r}")
    at = utcnow()
    with store.engine.begin() as conn:
        if incident_id is not None:
            exists = conn.execute(sa.select(incidents.c.incident_id).where(incidents.c.incident_id == incident_id))
            if exists.first() is None:
                raise AccessError(f"no incident {incident_id}")
            kind = "incident"
        post(conn, at, actor, text, incident_id, kind)
        target = f"incident:{incident_id}" if incident_id is not None else "status-page"
        audit(conn, actor, "status.publish", target, None, {"kind": kind, "text": text}, None)
    return {"at": at, "kind": kind, "incident_id": incident_id, "text": text}


# --- what the page shows ----------------------------------------------------------------------------------------


def _component(name: str, state: str, note: str = "") -> dict[str, str]:
    return {"name": name, "state": state, "note": note}


def components(store: HotStore, config: NightwatchConfig, report: HealthReport) -> list[dict[str, str]]:
    """Each component's public state, from the health report (and the sources' schedule, the notifier's beat)."""
    now = report.now
    paused = set(report.intake_paused)
    schedule = expectations(config.sources, now, last_seen_by_source(store, now), paused)
    rate = report.panel("Event rate")
    found = []
    for name, entry in schedule.items():
        spec = config.sources.sources[name]
        label = f"{name.upper() if len(name) <= 4 else name.capitalize()} ({spec.role})"
        if entry.paused:
            state, note = PAUSED, "intake paused by the operators"
        elif not entry.expected:
            state, note = IDLE, "the survey observes at night"
        elif entry.silent(now):
            state, note = OUTAGE, "no data received"
        elif rate.source_status.get(name) == "bad":
            state, note = DEGRADED, "receiving less or more data than expected"
        else:
            state, note = OPERATIONAL, ""
        found.append(_component(label, state, note))
    processing = {"SEV-1": OUTAGE, "SEV-2": DEGRADED}.get(report.severity or "")
    if processing is None:
        slow = any(report.panel(name).abnormal for name in ("Processing latency", "Error rate", "Queue depth"))
        processing = DEGRADED if slow else OPERATIONAL
    found.append(_component("Event processing", processing))
    agents = DEGRADED if "bad" in report.agents.status.values() else OPERATIONAL
    found.append(_component("Enrichment agents", agents))
    beat, _ = notifier_status(store, now)
    notify = {"ok": OPERATIONAL, "never": UNKNOWN}.get(beat, DEGRADED)
    found.append(_component("Alert notifications", notify))
    console = DEGRADED if report.severity == "SEV-4" else OPERATIONAL
    found.append(_component("Operations console", console))
    return found


def _public_incident(row: Any, updates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": f"INC-{row.incident_id}",
        "severity": row.severity,
        "title": PUBLIC_TITLES.get(row.severity, "Service issue"),
        "status": row.status,
        "opened_at": as_utc(row.opened_at),
        "resolved_at": as_utc(row.resolved_at) if row.resolved_at else None,
        "latest_update": updates[-1] if updates else None,
        "updates": updates,
    }


def _updates(conn: Connection, where: Any, limit: int) -> list[dict[str, Any]]:
    query = sa.select(status_updates.c.at, status_updates.c.kind, status_updates.c.text, status_updates.c.incident_id)
    rows = conn.execute(query.where(where).order_by(status_updates.c.update_id.desc()).limit(limit)).all()
    return [
        {"at": as_utc(row.at), "kind": row.kind, "text": row.text, "incident_id": row.incident_id}
        for row in reversed(rows)
    ]


def status(store: HotStore, config: NightwatchConfig, now: datetime | None = None) -> dict[str, Any]:
    """Everything the public page shows, as data (the page renders it; `/status.json` returns it)."""
    now = as_utc(now or utcnow())
    report = evaluate(store, config, now)
    parts = components(store, config, report)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(incidents)
            .where((incidents.c.status != "resolved") | (incidents.c.resolved_at >= now - RECENT))
            .order_by(incidents.c.incident_id.desc())
        ).all()
        shown = []
        for row in rows:
            updates = _updates(conn, status_updates.c.incident_id == row.incident_id, 20)
            for update in updates:
                update.pop("incident_id")
            shown.append(_public_incident(row, updates))
        notices = _updates(conn, status_updates.c.incident_id.is_(None), 5)
    for notice in notices:
        notice.pop("incident_id")
    active = [incident for incident in shown if incident["status"] != "resolved"]
    worst = max((RANK[part["state"]] for part in parts), default=0)
    if any(incident["severity"] == "SEV-1" for incident in active):
        worst = max(worst, RANK[OUTAGE])
    overall = {0: "All systems operational", 1: "Some intake paused", 2: "Degraded service", 3: "Major outage"}[worst]
    return {
        "generated_at": now,
        "overall": overall,
        "components": parts,
        "incidents": active,
        "recently_resolved": [incident for incident in shown if incident["status"] == "resolved"],
        "notices": notices,
    }
