"""Dead-letter queries for triage and re-drive: filtered listings (paged), one letter with its bytes, counts by
source, stage, reason and night, and marking letters resolved. The console, the API and the command line read
dead letters only through here (no SQL in a view or a router)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.event import as_utc, utcnow
from core.night import night_bounds, observing_night
from store.hot import HotStore
from store.schema import dead_letters

# Origins of packets re-driven from a dead letter: `redrive:<dead letter id>`. A redriven packet that fails
# again leaves a letter with this origin: an attempt, not a new failure (the original letter stands for it).
REDRIVE_ORIGIN = "redrive:"
STATUSES = ("open", "resolved", "all")
LISTED = (
    dead_letters.c.dead_letter_id,
    dead_letters.c.source,
    dead_letters.c.stage,
    dead_letters.c.reason,
    dead_letters.c.origin,
    dead_letters.c.event_id,
    dead_letters.c.injected,
    dead_letters.c.received_time,
    dead_letters.c.stored_at,
    dead_letters.c.resolved_at,
    sa.func.length(dead_letters.c.payload).label("payload_bytes"),
)
ORDER = (dead_letters.c.stored_at.desc(), dead_letters.c.dead_letter_id.desc())  # newest first


@dataclass(frozen=True)
class LetterFilter:
    """Which letters: by source, stage, a part of the reason (case-insensitive), the observing night they were
    received in (at the site's time zone), open or resolved. Re-drive attempts are left out unless asked."""

    source: str | None = None
    stage: str | None = None
    reason: str | None = None
    night: str | None = None
    status: str = "open"
    timezone: str = "UTC"
    attempts: bool = False

    def __post_init__(self) -> None:
        """Refuse a filter no query could answer (ValueError, said plainly), before any query runs."""
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}: one of {', '.join(STATUSES)}")
        if self.night:
            try:
                night_bounds(self.night, self.timezone)
            except ValueError as exc:
                raise ValueError(f"night {self.night!r} is not a date (YYYY-MM-DD)") from exc

    def where(self) -> sa.ColumnElement[bool]:
        clauses: list[sa.ColumnElement[bool]] = [sa.true()]
        if self.source:
            clauses.append(dead_letters.c.source == self.source)
        if self.stage:
            clauses.append(dead_letters.c.stage == self.stage)
        if self.reason:
            clauses.append(sa.func.lower(dead_letters.c.reason).contains(self.reason.lower(), autoescape=True))
        if self.night:
            start, end = night_bounds(self.night, self.timezone)
            clauses.append((dead_letters.c.received_time >= start) & (dead_letters.c.received_time < end))
        if self.status == "open":
            clauses.append(dead_letters.c.resolved_at.is_(None))
        elif self.status == "resolved":
            clauses.append(dead_letters.c.resolved_at.is_not(None))
        if not self.attempts:
            clauses.append(sa.func.coalesce(dead_letters.c.origin, "").not_like(f"{REDRIVE_ORIGIN}%"))
        return sa.and_(*clauses)


def reason_kind(reason: str) -> str:
    """A reason with its particulars (numbers, quoted values) taken out, so letters failing the same way group
    together: `ZTF candid 123: dec 95.0 out of range` -> `ZTF candid N: dec N out of range`."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason.splitlines()[0] if reason else "")
    text = re.sub(r"[-+]?\b\d+(\.\d+)?(e[-+]?\d+)?\b", "N", text)
    return text[:120]


def _row(row: Any, timezone: str) -> dict[str, Any]:
    data = dict(row._mapping)
    for name in ("received_time", "stored_at", "resolved_at"):
        if data.get(name) is not None:
            data[name] = as_utc(data[name])
    data["night"] = observing_night(data["received_time"], timezone)
    data["status"] = "resolved" if data["resolved_at"] else "open"
    return data


def list_letters(
    store: HotStore, where: LetterFilter, limit: int = 100, after: tuple[datetime, str] | None = None
) -> list[dict[str, Any]]:
    """Letters (no payload, its size instead), newest first; `after` is the (stored_at, id) of the last row of
    the previous page."""
    query = sa.select(*LISTED).where(where.where()).order_by(*ORDER).limit(limit)
    if after is not None:
        stored_at, letter_id = after
        query = query.where(
            (dead_letters.c.stored_at < stored_at)
            | ((dead_letters.c.stored_at == stored_at) & (dead_letters.c.dead_letter_id < letter_id))
        )
    with store.engine.connect() as conn:
        return [_row(row, where.timezone) for row in conn.execute(query)]


def get_letter(store: HotStore, letter_id: str, timezone: str = "UTC") -> dict[str, Any] | None:
    """One letter with its raw bytes (`payload`)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(*LISTED, dead_letters.c.payload).where(dead_letters.c.dead_letter_id == letter_id)
        ).first()
    return _row(row, timezone) if row else None


def letters_with_payload(store: HotStore, where: LetterFilter) -> list[dict[str, Any]]:
    """Every letter matching, with its bytes, oldest first (what a re-drive pushes back through the pipeline)."""
    query = sa.select(*LISTED, dead_letters.c.payload).where(where.where())
    query = query.order_by(dead_letters.c.stored_at, dead_letters.c.dead_letter_id)
    with store.engine.connect() as conn:
        return [_row(row, where.timezone) for row in conn.execute(query)]


STAT_KEYS = ("source", "stage", "reason", "night")


def stats(store: HotStore, where: LetterFilter, by: tuple[str, ...] = STAT_KEYS) -> list[dict[str, Any]]:
    """Counts of the matching letters grouped by `by` (any of source, stage, reason (its kind), night), largest
    first, each with the first and last time one was stored."""
    unknown = set(by) - set(STAT_KEYS)
    if unknown:
        raise ValueError(f"cannot group by {', '.join(sorted(unknown))}: use {', '.join(STAT_KEYS)}")
    columns = (dead_letters.c.source, dead_letters.c.stage, dead_letters.c.reason, dead_letters.c.received_time)
    query = sa.select(*columns, dead_letters.c.stored_at).where(where.where())
    counts: Counter[tuple[str, ...]] = Counter()
    first: dict[tuple[str, ...], datetime] = {}
    last: dict[tuple[str, ...], datetime] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            values = {
                "source": row.source,
                "stage": row.stage,
                "reason": reason_kind(row.reason),
                "night": observing_night(as_utc(row.received_time), where.timezone),
            }
            key = tuple(values[name] for name in by)
            counts[key] += 1
            stored = as_utc(row.stored_at)
            first[key] = min(first.get(key, stored), stored)
            last[key] = max(last.get(key, stored), stored)
    return [
        {**dict(zip(by, key, strict=True)), "count": count, "first": first[key], "last": last[key]}
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def resolve(store: HotStore, letter_ids: list[str]) -> int:
    """Mark letters resolved (kept, for the record); how many were still open."""
    changed = 0
    with store.engine.begin() as conn:
        for start in range(0, len(letter_ids), 500):
            changed += conn.execute(
                dead_letters.update()
                .where(dead_letters.c.dead_letter_id.in_(letter_ids[start : start + 500]))
                .where(dead_letters.c.resolved_at.is_(None))
                .values(resolved_at=utcnow())
            ).rowcount
    return changed


def attempts_of(store: HotStore, letter_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The re-drive attempts that failed again, per original letter id (their reasons say why)."""
    origins = [REDRIVE_ORIGIN + letter_id for letter_id in letter_ids]
    found: dict[str, list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(origins), 500):
            query = sa.select(*LISTED).where(dead_letters.c.origin.in_(origins[start : start + 500]))
            for row in conn.execute(query):
                data = _row(row, "UTC")
                found.setdefault(data["origin"].removeprefix(REDRIVE_ORIGIN), []).append(data)
    return found
