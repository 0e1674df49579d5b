"""On-call: who is on call (the weekly rotation), the escalation ladder, and the handoff report.

The rotation (config/oncall.yaml): each role (primary, secondary, engineering lead, director) has a list of people
and moves to the next one every 7 days from `rotation_start`; a business-hours role covers only those hours.

The ladder: an unacknowledged alert of an escalating level (CRITICAL) climbs by itself, step by step, as its age
passes each step's `after_min`: the previous step's role's `response_min` in oncall.yaml (0: the on-call; 15 min: the
backup on-call; 30 min: the engineering lead; 1 hour: the director). `escalate_due` is called by `nightwatch notify
run`; each step is recorded in the `escalations` table (once per alert and step: the row is the claim) and sent to
the person on their contact channel. A step whose role nobody covers at that hour is recorded as skipped and the
ladder goes on. Acknowledging (or resolving) the alert in the portal stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from config.settings import WEEKDAYS, BusinessHours, NightwatchConfig, OnCallConfig, Person
from core.event import as_utc
from ops.notify import (
    FAILED,
    RETRYING,
    Notifier,
    acknowledged,
    alert_notice,
    insert_once,
    load_alert,
)
from store.hot import HotStore
from store.schema import alerts, deliveries, escalations

WEEK = timedelta(days=7)
UNACKNOWLEDGED = ("open", "escalated")  # an escalation in the portal is not an acknowledgement


@dataclass(frozen=True)
class OnCall:
    role: str
    title: str
    person_id: str
    person: Person
    covered: bool  # False: a business-hours role outside business hours
    until: datetime  # the next weekly handoff


def in_business_hours(hours: BusinessHours, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(hours.timezone))
    return WEEKDAYS[local.weekday()] in hours.days and hours.start <= f"{local:%H:%M}" < hours.end


def on_call(config: OnCallConfig, at: datetime) -> dict[str, OnCall]:
    """Who holds each role at `at` (a UTC time)."""
    week = (as_utc(at) - config.rotation_start) // WEEK
    until = config.rotation_start + (week + 1) * WEEK
    who = {}
    for role, spec in config.roles.items():
        person_id = spec.people[week % len(spec.people)]
        covered = spec.coverage == "24/7" or in_business_hours(config.business_hours, at)
        who[role] = OnCall(role, spec.title, person_id, config.people[person_id], covered, until)
    return who


def escalate_due(store: HotStore, config: NightwatchConfig, notifier: Notifier, now: datetime) -> list[dict[str, Any]]:
    """Take every unacknowledged alert one or more steps up the ladder, as its age requires; return the new steps."""
    ladder = config.oncall.escalation
    oldest = now - timedelta(hours=ladder.give_up_after_h)
    query = sa.select(alerts.c.alert_id, alerts.c.created_at).where(
        alerts.c.level.in_(ladder.levels)
        & alerts.c.status.in_(UNACKNOWLEDGED)
        & alerts.c.injected.is_(False)
        & (alerts.c.created_at >= oldest)
    )
    with store.engine.connect() as conn:
        candidates = conn.execute(query).all()
        done = {
            (row.alert_id, row.step)
            for row in conn.execute(
                sa.select(escalations.c.alert_id, escalations.c.step).where(
                    escalations.c.alert_id.in_([row.alert_id for row in candidates])
                )
            )
        }
    stopped = acknowledged(store, [row.alert_id for row in candidates])
    who = on_call(config.oncall, now)
    steps = []
    for candidate in candidates:
        if candidate.alert_id in stopped:
            continue
        age = now - as_utc(candidate.created_at)
        for index, step in enumerate(ladder.steps):
            if age < timedelta(minutes=step.after_min):
                break
            if (candidate.alert_id, index) in done:
                continue
            recorded = _step(store, config, notifier, candidate.alert_id, index, who[step.role], now)
            if recorded:
                steps.append(recorded)
    return steps


def claim_step(store: HotStore, key: str, index: int, step: Any, who: OnCall, now: datetime) -> dict[str, Any] | None:
    """Record ladder step `index` of `key` (an alert id, or "incident:N") as paged or skipped (nobody covers the
    role at this hour: the ladder goes on); the row is the claim. None when another runner took this step."""
    row = {
        "alert_id": key,
        "step": index,
        "after_min": step.after_min,
        "role": who.role,
        "person": who.person_id,
        "channel": who.person.channel,
        "status": "paged" if who.covered else "skipped",
        "note": step.note if who.covered else f"{who.title} covers business hours only: the ladder goes on",
        "at": now,
    }
    return row if insert_once(store, escalations, row, ["alert_id", "step"]) else None


def mark_failed(store: HotStore, row: dict[str, Any], error: str | None) -> None:
    """The step's page could not be delivered: the row says so (and why)."""
    row["status"], row["note"] = "failed", f"{row['note']} | {error}"
    with store.engine.begin() as conn:
        conn.execute(
            escalations.update()
            .where((escalations.c.alert_id == row["alert_id"]) & (escalations.c.step == row["step"]))
            .values(status="failed", note=row["note"])
        )


def _step(
    store: HotStore, config: NightwatchConfig, notifier: Notifier, alert_id: str, index: int, who: OnCall, now: datetime
) -> dict[str, Any] | None:
    step = config.oncall.escalation.steps[index]
    row = claim_step(store, alert_id, index, step, who, now)
    if row is None:
        return None  # another runner took this step
    if who.covered:
        alert = load_alert(store, alert_id)
        if alert is None:
            return row
        summary = (
            f"Escalation step {index} ({step.note or who.title}): {alert.title} unacknowledged for "
            f"{(now - alert.created_at).total_seconds() / 60:.0f} min. {who.person.name}, please respond."
        )
        notice = alert_notice(
            alert, f"escalate-{index}", notifier.settings.portal_url, summary=summary, recipient=who.person.to
        )
        delivery = notifier.deliver(notice, who.person.channel, night=alert.night)
        if delivery["status"] == FAILED:
            mark_failed(store, row, delivery["error"])
    return row


def escalations_for(store: HotStore, alert_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(escalations).order_by(escalations.c.alert_id, escalations.c.step)
    if alert_id is not None:
        query = query.where(escalations.c.alert_id == alert_id)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def handoff(store: HotStore, config: NightwatchConfig, now: datetime) -> dict[str, Any]:
    """What the outgoing on-call hands over: who is on call now and next, active incidents (unacknowledged
    CRITICAL/HIGH alerts, failing deliveries, escalations in progress), open alerts, maintenance windows."""
    from ops.incidents.records import list_incidents  # (ops.incidents pages through this module: imported here)
    from ops.maintenance import list_windows
    from ops.responses import response_deadline

    with store.engine.connect() as conn:
        open_alerts = conn.execute(
            sa.select(alerts.c.alert_id, alerts.c.level, alerts.c.status, alerts.c.title, alerts.c.created_at)
            .where((alerts.c.status != "resolved") & alerts.c.injected.is_(False))
            .order_by(sa.case({"CRITICAL": 0, "HIGH": 1}, value=alerts.c.level, else_=2), alerts.c.created_at)
        ).all()
        failing = conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.status.in_((FAILED, RETRYING)))
            .order_by(deliveries.c.updated_at.desc())
            .limit(50)
        ).all()
    zone = config.sources.site.timezone
    listed = [
        {
            "alert_id": row.alert_id,
            "level": row.level,
            "status": row.status,
            "title": row.title,
            "age_min": round((now - as_utc(row.created_at)).total_seconds() / 60),
            "overdue": row.status in UNACKNOWLEDGED
            and now > response_deadline(row.level, as_utc(row.created_at), zone),
        }
        for row in open_alerts
    ]
    incidents = [a for a in listed if a["level"] in ("CRITICAL", "HIGH") and a["status"] in UNACKNOWLEDGED]
    incident_ids = {a["alert_id"] for a in incidents}
    climbing: dict[str, dict[str, Any]] = {}
    for row in escalations_for(store):
        if row["alert_id"] in incident_ids:
            climbing[row["alert_id"]] = row  # ordered by step: the last one is the highest reached
    now_on = on_call(config.oncall, now)
    next_on = on_call(config.oncall, next(iter(now_on.values())).until) if now_on else {}
    return {
        "at": now.isoformat(),
        "on_call": {role: describe_on_call(entry) for role, entry in now_on.items()},
        "next_on_call": {role: describe_on_call(entry) for role, entry in next_on.items()},
        "incidents": incidents,
        # The health watcher's incidents not resolved yet (nightwatch incidents show N for their checklist).
        "open_incidents": [
            {
                "incident": found.name,
                "severity": found.severity,
                "status": found.status,
                "opened_at": found.opened_at.isoformat(),
                "latest": f"{found.latest['kind']}: {found.latest['text']}" if found.latest else "",
            }
            for found in list_incidents(store, "active")
        ],
        "failing_deliveries": [
            {
                "alert_id": row.alert_id,
                "channel": row.channel,
                "action": row.action,
                "status": row.status,
                "attempt": row.attempt,
                "error": row.error,
                "next_attempt_at": as_utc(row.next_attempt_at).isoformat() if row.next_attempt_at else None,
            }
            for row in failing
        ],
        "escalations": [
            {key: row[key] for key in ("alert_id", "step", "role", "person", "status")} | {"at": str(row["at"])}
            for row in climbing.values()
        ],
        "open_alerts": listed,
        "maintenance": [window.describe() for window in list_windows(store, now)],
    }


def describe_on_call(entry: OnCall) -> dict[str, Any]:
    return {
        "title": entry.title,
        "person": entry.person_id,
        "name": entry.person.name,
        "contact": f"{entry.person.channel}" + (f" {entry.person.to}" if entry.person.to else ""),
        "covered_now": entry.covered,
        "until": entry.until.isoformat(),
    }
