"""Reading incidents: one with its timeline, checklist and pages, a listing, the one open now; and writing a
timeline line (shared by the people's actions and the watcher)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.event import as_utc
from store.hot import HotStore
from store.schema import escalations, incident_checklist, incident_timeline, incidents

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
ACTIVE = "active"


def incident_key(incident_id: int) -> str:
    """The key of an incident's pages (`escalations`) and notices (`deliveries`)."""
    return f"incident:{incident_id}"


@dataclass
class Incident:
    incident_id: int
    severity: str
    opened_severity: str
    status: str
    title: str
    reason: str
    procedure: str | None
    opened_at: datetime
    last_bad_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    review: dict[str, Any] | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    checklist: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)  # the ladder's steps (escalations rows)

    @property
    def key(self) -> str:
        return incident_key(self.incident_id)

    @property
    def name(self) -> str:
        return f"INC-{self.incident_id}"

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.timeline[-1] if self.timeline else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}


_TIMES = ("opened_at", "last_bad_at", "acknowledged_at", "resolved_at", "reviewed_at")


def _incident(row: Any) -> Incident:
    data = {name: value for name, value in row._mapping.items() if name != "active"}
    for name in _TIMES:
        if data.get(name) is not None:
            data[name] = as_utc(data[name])
    data["review"] = json.loads(data["review"]) if data.get("review") else None
    return Incident(**data)


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    rows = []
    for row in conn.execute(query):
        data = dict(row._mapping)
        for name in ("at", "done_at"):
            if data.get(name) is not None:
                data[name] = as_utc(data[name])
        rows.append(data)
    return rows


def get_incident(store: HotStore, incident_id: int) -> Incident | None:
    """One incident with its timeline (oldest first), checklist and pages; None if there is no such incident."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(incidents).where(incidents.c.incident_id == incident_id)).first()
        if row is None:
            return None
        incident = _incident(row)
        incident.timeline = _rows(
            conn,
            sa.select(incident_timeline)
            .where(incident_timeline.c.incident_id == incident_id)
            .order_by(incident_timeline.c.entry_id),
        )
        incident.checklist = _rows(
            conn,
            sa.select(incident_checklist)
            .where(incident_checklist.c.incident_id == incident_id)
            .order_by(incident_checklist.c.step),
        )
        incident.pages = _rows(
            conn,
            sa.select(escalations).where(escalations.c.alert_id == incident.key).order_by(escalations.c.step),
        )
    return incident


def list_incidents(store: HotStore, status: str | None = None, limit: int = 100) -> list[Incident]:
    """Incidents, newest first, each with its latest timeline line; `status` "active" means not resolved."""
    query = sa.select(incidents).order_by(incidents.c.incident_id.desc()).limit(limit)
    if status == ACTIVE:
        query = query.where(incidents.c.status != RESOLVED)
    elif status:
        query = query.where(incidents.c.status == status)
    with store.engine.connect() as conn:
        found = [_incident(row) for row in conn.execute(query)]
        if found:
            latest = (
                sa.select(incident_timeline)
                .where(
                    incident_timeline.c.entry_id.in_(
                        sa.select(sa.func.max(incident_timeline.c.entry_id))
                        .where(incident_timeline.c.incident_id.in_([i.incident_id for i in found]))
                        .group_by(incident_timeline.c.incident_id)
                    )
                )
                .order_by(incident_timeline.c.entry_id)
            )
            by_id = {row["incident_id"]: row for row in _rows(conn, latest)}
            for incident in found:
                incident.timeline = [by_id[incident.incident_id]] if incident.incident_id in by_id else []
    return found


def active_incident(store: HotStore) -> Incident | None:
    """The incident open now (at most one), with its timeline and checklist."""
    with store.engine.connect() as conn:
        incident_id = conn.execute(sa.select(incidents.c.incident_id).where(incidents.c.active == ACTIVE)).scalar()
    return None if incident_id is None else get_incident(store, incident_id)


def add_line(conn: Connection, incident_id: int, at: datetime, kind: str, actor: str, text: str) -> None:
    """One line of an incident's timeline, in the caller's transaction."""
    conn.execute(incident_timeline.insert().values(incident_id=incident_id, at=at, kind=kind, actor=actor, text=text))
