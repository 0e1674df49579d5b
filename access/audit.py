"""The audit log: one append-only row per change (who, when, what, before, after), written in the change's
transaction; the database refuses UPDATE and DELETE (triggers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import audit_log

# --- the audit log (append-only) ----------------------------------------------------------------------------


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def audit(
    conn: Connection, actor: str, action: str, target: str, before: Any, after: Any, note: str | None = None
) -> None:
    """Append one audit row inside the caller's transaction, so the change and its record commit together."""
    conn.execute(
        audit_log.insert().values(
            at=utcnow(),
            actor=actor,
            action=action,
            target=target,
            before=_json(before),
            after=_json(after),
            note=note or None,
        )
    )


def audit_alone(
    store: HotStore, actor: str, action: str, target: str, before: Any, after: Any, note: str | None
) -> None:
    with store.engine.begin() as conn:
        audit(conn, actor, action, target, before, after, note)


def record(store: HotStore, actor: str, action: str, target: str, before: Any, after: Any, note: str = "") -> None:
    """Append one audit row for a change made elsewhere (configuration documents, the command line)."""
    audit_alone(store, actor, action, target, before, after, note)


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    note: str | None


def audit_entries(
    store: HotStore, actor: str | None = None, action: str | None = None, target: str | None = None, limit: int = 500
) -> list[AuditEntry]:
    """The newest audit rows first, optionally for one actor, action prefix or target. Reading only: the log
    has no update or delete here, and the database refuses them (triggers)."""
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action.startswith(action))
    if target:
        query = query.where(audit_log.c.target == target)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        AuditEntry(
            audit_id=row.audit_id,
            at=as_utc(row.at),
            actor=row.actor,
            action=row.action,
            target=row.target,
            before=json.loads(row.before) if row.before else None,
            after=json.loads(row.after) if row.after else None,
            note=row.note,
        )
        for row in rows
    ]
