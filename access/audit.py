"""The audit log: one append-only row per change (who, when, what, before, after), written in the change's
transaction; the database refuses UPDATE and DELETE (triggers). Each row carries a hash chaining it to the one
before (store/chain.py), so a row changed, deleted or forged by someone who set the triggers aside (with the
application's own credentials) is found by `verify_chain` (`nightwatch audit verify`, the console's audit page)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.event import as_utc, utcnow
from store.chain import GENESIS, HEAD, chain_hash
from store.hot import HotStore
from store.inserts import insert_ignoring_conflicts
from store.schema import audit_chain, audit_log

# --- the audit log (append-only) ----------------------------------------------------------------------------


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def audit(
    conn: Connection, actor: str, action: str, target: str, before: Any, after: Any, note: str | None = None
) -> None:
    """Append one audit row inside the caller's transaction, so the change and its record commit together.

    The chain's head row is locked first (FOR UPDATE on PostgreSQL; on SQLite the write takes the database's
    lock), so concurrent appends extend the chain one after the other until their transactions end.
    """
    previous = _lock_head(conn)
    row = {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "target": target,
        "before": _json(before),
        "after": _json(after),
        "note": note or None,
    }
    row["row_hash"] = chain_hash(previous, row)
    audit_id = conn.execute(audit_log.insert().values(**row)).inserted_primary_key[0]
    conn.execute(
        audit_chain.update().where(audit_chain.c.name == HEAD).values(last_id=audit_id, last_hash=row["row_hash"])
    )


def _lock_head(conn: Connection) -> str:
    """Lock the chain's head and return the last row's hash."""
    # A write first: SQLite takes its write lock now, not at the insert after this read.
    conn.execute(audit_chain.update().where(audit_chain.c.name == HEAD).values(name=HEAD))
    query = sa.select(audit_chain.c.last_hash).where(audit_chain.c.name == HEAD).with_for_update()
    last = conn.execute(query).scalar()
    if last is None:  # a store whose head row is missing: start it
        conn.execute(insert_ignoring_conflicts(conn, audit_chain, ["name"]).values(name=HEAD, last_hash=GENESIS))
        last = conn.execute(query).scalar()
    return last


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


def kind_of(action: str) -> str:
    """An action's kind: what it acts on, the part before the first dot (`alert.acknowledge` -> `alert`)."""
    return action.split(".", 1)[0]


def action_kinds(store: HotStore) -> dict[str, int]:
    """Every kind of action in the log, with how many entries it has (most first)."""
    with store.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action, sa.func.count()).group_by(audit_log.c.action)).all()
    kinds: dict[str, int] = {}
    for action, count in actions:
        kinds[kind_of(action)] = kinds.get(kind_of(action), 0) + int(count)
    return dict(sorted(kinds.items(), key=lambda item: (-item[1], item[0])))


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def describe_change(before: Any, after: Any) -> str:
    """A readable diff of an entry's before and after: `role: observer → operator; note added: "…"`."""
    if before is None and after is None:
        return ""
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before is None:
            return f"set to {_shown(after)}"
        if after is None:
            return f"was {_shown(before)}, removed"
        return f"{_shown(before)} → {_shown(after)}"
    parts = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key not in before:
            parts.append(f"{key}: {_shown(new)} (new)")
        elif key not in after:
            parts.append(f"{key}: {_shown(old)} (removed)")
        elif old != new:
            parts.append(f"{key}: {_shown(old)} → {_shown(new)}")
    return "; ".join(parts) or "no change"


def audit_entries(
    store: HotStore,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    limit: int = 500,
    kinds: list[str] | None = None,
) -> list[AuditEntry]:
    """The newest audit rows first, optionally for one actor, action prefix, target or kinds of action. Reading
    only: the log has no update or delete here, and the database refuses them (triggers)."""
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit)
    if kinds is not None:
        of_kind = [audit_log.c.action.startswith(f"{kind}.") | (audit_log.c.action == kind) for kind in kinds]
        query = query.where(sa.or_(sa.false(), *of_kind))
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


@dataclass(frozen=True)
class ChainCheck:
    """What `verify_chain` found: `bad_id` is the first row that breaks the chain (None if it is intact)."""

    rows: int
    bad_id: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.problem

    def line(self) -> str:
        if self.intact:
            return f"audit log intact: {self.rows} rows, each chained to the one before"
        return f"audit log tampered with: {self.problem}"


def verify_chain(store: HotStore) -> ChainCheck:
    """Walk the log in order and recompute each row's hash from the previous one. A changed row fails its own
    hash; a deleted row fails the next one's; a forged row fails its own (or has none); rows deleted at the end
    leave the chain's head pointing past the last row."""
    previous, last_id, count = GENESIS, None, 0
    with store.engine.connect() as conn:
        head = conn.execute(sa.select(audit_chain).where(audit_chain.c.name == HEAD)).first()
        for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.audit_id)):
            count += 1
            if row.row_hash is None:
                return ChainCheck(count, row.audit_id, f"row {row.audit_id} has no hash (written around the chain)")
            if chain_hash(previous, row) != row.row_hash:
                return ChainCheck(
                    count,
                    row.audit_id,
                    f"row {row.audit_id} does not follow from the row before it "
                    "(it was changed or forged, or the row before it was deleted)",
                )
            previous, last_id = row.row_hash, row.audit_id
    if head is not None and head.last_hash != previous:
        return ChainCheck(
            count, head.last_id, f"the chain ends at row {head.last_id} but the log at row {last_id}: rows deleted"
        )
    return ChainCheck(count)
