"""What people do with an incident: acknowledge, note, tick a checklist step, resolve, write the post-incident
review. One code path for the console, the CLI and the API: each checks the actor's role here (Operator and
above: `respond_incidents`), writes its timeline line and its audit row in one transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from access.accounts import acting
from access.audit import audit
from access.roles import AccessError
from config.settings import NightwatchConfig, load_config
from core.event import utcnow
from ops import statuspage
from ops.incidents.records import ACKNOWLEDGED, OPEN, RESOLVED, Incident, add_line, get_incident
from store.hot import HotStore
from store.schema import incident_checklist, incidents

log = logging.getLogger("nightwatch.incidents")
PERMISSION = "respond_incidents"


def _change(
    store: HotStore,
    actor: str,
    incident_id: int,
    action: str,
    note: str,
    work: Callable[[Connection, Any], tuple[dict[str, Any], dict[str, Any], str]],
    at: datetime | None = None,
) -> Incident:
    """The frame of every action: role check, the incident locked and read, `work` (which returns before, after
    and the timeline text), the timeline line and the audit row, all committed together."""
    acting(store, actor, PERMISSION)
    note = note.strip()
    if not note:
        raise AccessError(f"{action} needs a note (what was done, who was told)")
    at = at or utcnow()
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(incidents).where(incidents.c.incident_id == incident_id).with_for_update()).first()
        if row is None:
            raise AccessError(f"no incident {incident_id}")
        before, after, text = work(conn, row)
        add_line(conn, incident_id, at, action, actor, text)
        audit(conn, actor, f"incident.{action}", f"incident:{incident_id}", before, after, note)
    incident = get_incident(store, incident_id)
    assert incident is not None
    return incident


def _pages(store: HotStore, incident: Incident, action: str, why: str, config: NightwatchConfig | None) -> None:
    """The acknowledge or resolve goes to the channels that were paged; never raises (the action stands)."""
    from ops.incidents.pages import follow_up
    from ops.notify import Notifier

    try:
        config = config or load_config()
        notifier = Notifier(store, config, timeout_s=config.notifications.pipeline_timeout_s)
        try:
            follow_up(notifier, config, incident, action, why)
        finally:
            notifier.close()
    except Exception:  # noqa: BLE001
        log.exception("could not send the %s of incident %s", action, incident.incident_id)


def acknowledge(
    store: HotStore, actor: str, incident_id: int, note: str, config: NightwatchConfig | None = None
) -> Incident:
    """Acknowledge an open incident: the ladder stops climbing (the guide's step 1, ticked)."""

    def work(conn: Connection, row: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        if row.status != OPEN:
            raise AccessError(f"incident {incident_id} is {row.status}: only an open incident is acknowledged")
        now = utcnow()
        conn.execute(
            incidents.update()
            .where(incidents.c.incident_id == incident_id)
            .values(status=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor)
        )
        # The procedure's first step is "Acknowledge alert": done by this.
        conn.execute(
            incident_checklist.update()
            .where(
                (incident_checklist.c.incident_id == incident_id)
                & (incident_checklist.c.step == 1)
                & incident_checklist.c.done_at.is_(None)
                & incident_checklist.c.text.ilike("acknowledge%")
            )
            .values(done_at=now, done_by=actor)
        )
        statuspage.post(conn, now, actor, statuspage.IDENTIFIED, incident_id, "incident")
        return {"status": row.status}, {"status": ACKNOWLEDGED}, f"acknowledged by {actor}: {note.strip()}"

    incident = _change(store, actor, incident_id, "acknowledged", note, work)
    _pages(store, incident, "acknowledge", f"acknowledged by {actor}", config)
    return incident


def add_note(store: HotStore, actor: str, incident_id: int, text: str, public: bool = False) -> Incident:
    """A note on the timeline (what was found, what was done, who was told); `public` also publishes it to the
    status page as the incident's latest update (the note is then what visitors read: write it for them)."""

    def work(conn: Connection, row: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        if public:
            if len(text.strip()) > statuspage.MAX_TEXT:
                raise AccessError(f"a public update is at most {statuspage.MAX_TEXT} characters")
            statuspage.post(conn, utcnow(), actor, text.strip(), incident_id, "incident")
        return {"status": row.status}, {"note": text.strip(), "public": public}, text.strip()

    return _change(store, actor, incident_id, "note", text, work)


def tick(store: HotStore, actor: str, incident_id: int, step: int, note: str = "done", done: bool = True) -> Incident:
    """Tick (or untick) a step of the incident's procedure."""

    def work(conn: Connection, row: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        item = conn.execute(
            sa.select(incident_checklist).where(
                (incident_checklist.c.incident_id == incident_id) & (incident_checklist.c.step == step)
            )
        ).first()
        if item is None:
            raise AccessError(f"incident {incident_id} has no step {step}")
        if (item.done_at is not None) == done:
            raise AccessError(f"step {step} is already {'done' if done else 'not done'}")
        conn.execute(
            incident_checklist.update()
            .where((incident_checklist.c.incident_id == incident_id) & (incident_checklist.c.step == step))
            .values(done_at=utcnow() if done else None, done_by=actor if done else None)
        )
        verb = "done" if done else "not done after all"
        return (
            {"step": step, "done": item.done_at is not None},
            {"step": step, "done": done},
            f"step {step} {verb}: {item.text} ({note.strip()})",
        )

    return _change(store, actor, incident_id, "tick" if done else "untick", note, work)


def resolve(
    store: HotStore, actor: str, incident_id: int, note: str, config: NightwatchConfig | None = None
) -> Incident:
    """Resolve an incident by hand. (The watcher resolves one itself when health recovers; if health is still at
    an opening level, its next pass opens a new incident.)"""

    def work(conn: Connection, row: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        if row.status == RESOLVED:
            raise AccessError(f"incident {incident_id} is already resolved")
        now = utcnow()
        conn.execute(
            incidents.update()
            .where(incidents.c.incident_id == incident_id)
            .values(status=RESOLVED, active=None, resolved_at=now, resolved_by=actor)
        )
        statuspage.post(conn, now, actor, statuspage.RESOLVED, incident_id, "incident")
        return {"status": row.status}, {"status": RESOLVED}, f"resolved by {actor}: {note.strip()}"

    incident = _change(store, actor, incident_id, "resolved", note, work)
    _pages(store, incident, "resolve", f"resolved by {actor}", config)
    return incident


REVIEW_FIELDS = ("summary", "root_cause", "follow_ups")


def review(
    store: HotStore, actor: str, incident_id: int, summary: str, root_cause: str, follow_ups: str = ""
) -> Incident:
    """The post-incident review ("Document incident", "Post-incident review"): what happened, why, what follows.
    Written once the incident is resolved; written again, it replaces the earlier text (both stay audited)."""

    def work(conn: Connection, row: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        if row.status != RESOLVED:
            raise AccessError(f"incident {incident_id} is {row.status}: review it once it is resolved")
        if not root_cause.strip():
            raise AccessError("a review needs its root cause")
        record = {"summary": summary.strip(), "root_cause": root_cause.strip(), "follow_ups": follow_ups.strip()}
        conn.execute(
            incidents.update()
            .where(incidents.c.incident_id == incident_id)
            .values(review=json.dumps(record), reviewed_by=actor, reviewed_at=utcnow())
        )
        before = json.loads(row.review) if row.review else None
        return {"review": before}, {"review": record}, f"post-incident review by {actor}: {record['root_cause']}"

    return _change(store, actor, incident_id, "review", summary, work)
