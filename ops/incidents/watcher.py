"""The health watcher's pass: evaluate health at `now`; open an incident at an opening level (or raise the open
one's severity), page and climb the ladder while nobody has acknowledged, resolve when health has recovered.

Everything takes `now` and a `Notifier` whose clock the caller chooses, so a test drives a night of escalations
on a fake clock. Its actions are audited as the watcher (`system:watcher`): a system actor, not a person, so no
role applies; what people do goes through `actions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from access.audit import audit
from config.settings import SEVERITIES, NightwatchConfig
from ops import statuspage
from ops.health import HealthReport, evaluate
from ops.health.report import RUNBOOKS
from ops.incidents.pages import due_steps, follow_up, page_opening, take_step
from ops.incidents.records import ACTIVE, OPEN, RESOLVED, Incident, active_incident, add_line, get_incident
from ops.notify import Notifier
from store.hot import HotStore
from store.inserts import insert_ignoring_conflicts
from store.schema import incident_checklist, incidents

WATCHER = "system:watcher"


@dataclass
class Pass:
    """What one pass saw and did."""

    at: datetime
    severity: str | None
    reason: str
    incident: Incident | None = None
    did: list[str] = field(default_factory=list)


def worse(level: str, than: str) -> bool:
    return SEVERITIES.index(level) < SEVERITIES.index(than)


def procedure_of(config: NightwatchConfig, report: HealthReport) -> tuple[str | None, list[str]]:
    """The runbook an incident's checklist comes from (incidents.yaml `procedures`, else the one health names),
    without its "Escalation: ..." line: the ladder is the watcher's to run, not a step to tick."""
    name = config.incidents.procedures.get(report.severity or "")  # type: ignore[call-overload]
    runbook = RUNBOOKS.get(name) if name else report.runbook
    if runbook is None:
        return None, []
    return runbook.title, [step for step in runbook.steps if not step.lower().startswith("escalation")]


def _open(store: HotStore, config: NightwatchConfig, report: HealthReport, now: datetime) -> int | None:
    """Open the incident (None when another watcher opened one first: the `active` unique key)."""
    procedure, steps = procedure_of(config, report)
    title = report.reason.split(":", 1)[0][:200] if report.reason else report.severity or "incident"
    with store.engine.begin() as conn:
        inserted = conn.execute(
            insert_ignoring_conflicts(conn, incidents, ["active"]).values(
                severity=report.severity,
                opened_severity=report.severity,
                status=OPEN,
                active=ACTIVE,
                title=title,
                reason=report.reason,
                procedure=procedure,
                opened_at=now,
                last_bad_at=now,
            )
        )
        if inserted.rowcount != 1:
            return None
        incident_id = conn.execute(sa.select(incidents.c.incident_id).where(incidents.c.active == ACTIVE)).scalar()
        for number, text in enumerate(steps, 1):
            conn.execute(incident_checklist.insert().values(incident_id=incident_id, step=number, text=text))
        add_line(conn, incident_id, now, "opened", WATCHER, f"{report.severity} opened: {report.reason}")
        statuspage.post(conn, now, WATCHER, statuspage.INVESTIGATING, incident_id, "incident")
        audit(
            conn,
            WATCHER,
            "incident.open",
            f"incident:{incident_id}",
            None,
            {"severity": report.severity},
            report.reason,
        )
    return incident_id


def _worsen(store: HotStore, incident: Incident, report: HealthReport, now: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            incidents.update()
            .where(incidents.c.incident_id == incident.incident_id)
            .values(severity=report.severity, reason=report.reason, last_bad_at=now)
        )
        text = f"worsened from {incident.severity} to {report.severity}: {report.reason}"
        add_line(conn, incident.incident_id, now, "worsened", WATCHER, text)
        before, after = {"severity": incident.severity}, {"severity": report.severity}
        audit(conn, WATCHER, "incident.worsen", incident.key, before, after, report.reason)


def _still_bad(store: HotStore, incident: Incident, now: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(incidents.update().where(incidents.c.incident_id == incident.incident_id).values(last_bad_at=now))


def _resolve(store: HotStore, incident: Incident, report: HealthReport, now: datetime) -> bool:
    why = f"health recovered: {report.severity or 'no incident'} ({report.reason})"
    with store.engine.begin() as conn:
        done = conn.execute(
            incidents.update()
            .where((incidents.c.incident_id == incident.incident_id) & (incidents.c.status != RESOLVED))
            .values(status=RESOLVED, active=None, resolved_at=now, resolved_by=WATCHER)
        ).rowcount
        if done != 1:
            return False
        add_line(conn, incident.incident_id, now, "resolved", WATCHER, why)
        statuspage.post(conn, now, WATCHER, statuspage.RESOLVED, incident.incident_id, "incident")
        audit(conn, WATCHER, "incident.resolve", incident.key, {"status": incident.status}, {"status": RESOLVED}, why)
    return True


def _record_pages(store: HotStore, incident_id: int, now: datetime, kind: str, text: str) -> None:
    with store.engine.begin() as conn:
        add_line(conn, incident_id, now, kind, WATCHER, text)


def watch_once(
    store: HotStore, config: NightwatchConfig, notifier: Notifier, now: datetime, levels: list[str] | None = None
) -> Pass:
    """One pass of the watcher at `now`; `levels` overrides incidents.yaml `open_at` (e.g. adding SEV-3)."""
    opening = set(levels or config.incidents.open_at)
    report = evaluate(store, config, now)
    result = Pass(now, report.severity, report.reason)
    incident = active_incident(store)
    bad = report.severity in opening
    if bad and incident is None:
        incident_id = _open(store, config, report, now)
        incident = get_incident(store, incident_id) if incident_id is not None else active_incident(store)
        if incident_id is not None and incident is not None:
            result.did.append(f"opened {incident.name} ({incident.severity})")
            sent = page_opening(notifier, config, incident)
            if sent:
                reached = ", ".join(f"{row['channel']} {row['status']}" for row in sent)
                _record_pages(store, incident.incident_id, now, "paged", f"opening page: {reached}")
    elif bad and incident is not None:
        if worse(report.severity, incident.severity):  # type: ignore[arg-type]
            _worsen(store, incident, report, now)
            result.did.append(f"{incident.name} worsened to {report.severity}")
        else:
            _still_bad(store, incident, now)
    elif incident is not None:
        recovered_for = now - incident.last_bad_at
        if recovered_for >= timedelta(minutes=config.incidents.resolve_after_min):
            if _resolve(store, incident, report, now):
                result.did.append(f"resolved {incident.name}")
                resolved = get_incident(store, incident.incident_id)
                if resolved is not None:
                    follow_up(notifier, config, resolved, "resolve", "health recovered")
            result.incident = get_incident(store, incident.incident_id)
            return result
    if incident is not None:
        incident = get_incident(store, incident.incident_id)
    if incident is not None and incident.status == OPEN:
        for index in due_steps(config, incident, now):
            row = take_step(notifier, config, incident, index, now)
            if row is None:
                continue
            step = config.oncall.escalation.steps[index]
            kind = "paged" if index == 0 else "escalated"
            text = f"step {index} ({step.note or row['role']}): {row['person']} on {row['channel']}: {row['status']}"
            _record_pages(store, incident.incident_id, now, kind, text)
            result.did.append(text)
        incident = get_incident(store, incident.incident_id)
    result.incident = incident
    return result


def describe(result: Pass) -> dict[str, Any]:
    return {
        "at": result.at.isoformat(),
        "severity": result.severity,
        "reason": result.reason,
        "incident": result.incident.name if result.incident else None,
        "status": result.incident.status if result.incident else None,
        "did": result.did,
    }
