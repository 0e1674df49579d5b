"""Events, alerts, the review queue and dead letters: their rows, and the hot store's writes and reads of them.

Every write is idempotent on its id: storing the same event twice leaves one row, and says it was new once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import names
from core.event import DeadLetter, Event, utcnow
from store.inserts import insert_ignoring_conflicts, insert_new
from store.lightcurves import add_points
from store.schema import alerts, dead_letters, events, notify_outbox, review_queue


def alert_id_for(event_id: str) -> str:
    return f"alert:{event_id}"


def event_row(event: Event, stored_at: datetime) -> dict[str, Any]:
    return {
        **event.columns(),
        "reasons": json.dumps(event.reasons),
        "rules_version": event.lineage.get("rules_version"),
        "filter_version": event.lineage.get("filter_version"),
        "run_id": event.lineage.get("run_id"),
        "payload": event.to_json(),
        "stored_at": stored_at,
    }


def alert_row(event: Event, created_at: datetime) -> dict[str, Any]:
    alert_id = alert_id_for(event.event_id)
    where = f" at RA {event.ra:.4f}, Dec {event.dec:+.4f}" if event.ra is not None else ""
    return {
        "alert_id": alert_id,
        "event_id": event.event_id,
        "level": event.alert_level,
        "status": "open",
        "score": event.score,
        "title": f"{event.alert_level}: {event.source} {event.kind}{where}",
        "dedup_key": alert_id,
        "injected": event.injected,
        "created_at": created_at,
    }


def review_row(event: Event, created_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "status": "pending",
        "score": event.score,
        "injected": event.injected,
        "created_at": created_at,
    }


def dead_letter_row(letter: DeadLetter, stored_at: datetime) -> dict[str, Any]:
    return {
        "dead_letter_id": letter.dead_letter_id,
        "source": letter.source,
        "stage": letter.stage,
        "reason": letter.reason,
        "payload": letter.payload,
        "origin": letter.origin,
        "event_id": letter.event_id,
        "injected": letter.injected,
        "received_time": letter.received_time,
        "stored_at": stored_at,
    }


def resolve_dead_letters(conn: sa.Connection, what: str, event_ids: list[str]) -> None:
    """The events are in table `what` now (stored, or found stored): their dead letters from a failed write to
    it are stale, marked resolved (kept, for the record; `verify`, health and the checklist skip them)."""
    for start in range(0, len(event_ids), 500):
        conn.execute(
            dead_letters.update()
            .where(
                (dead_letters.c.stage == names.sink_stage(what))
                & dead_letters.c.event_id.in_(event_ids[start : start + 500])
                & dead_letters.c.resolved_at.is_(None)
            )
            .values(resolved_at=utcnow())
        )


class EventQueries:
    """The hot store's events, alerts, reviews and dead letters (a part of `store.hot.HotStore`)."""

    engine: sa.Engine

    def _insert_new(self, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> set[str]:
        """Insert the rows whose key is not stored yet; return the keys that were new."""
        if not rows:
            return set()
        with self.engine.begin() as conn:
            new = insert_new(conn, table, key, rows)
            what = {events.name: names.EVENTS, review_queue.name: names.REVIEW}.get(table.name)
            if what is not None:
                resolve_dead_letters(conn, what, [row["event_id"] for row in rows])
            return new

    def add_events(self, batch: Iterable[Event]) -> set[str]:
        """Store the events and, in the same transaction, the light-curve points their packets carried."""
        now = utcnow()
        batch = list(batch)
        rows = [event_row(event, now) for event in batch]
        if not rows:
            return set()
        with self.engine.begin() as conn:
            new = insert_new(conn, events, "event_id", rows)
            add_points(conn, batch, now)
            resolve_dead_letters(conn, names.EVENTS, [row["event_id"] for row in rows])
        return new

    def add_alerts(self, batch: Iterable[Event]) -> set[str]:
        """Store the alerts and, in the same transaction, a pending outbox row for each new one: an alert that is
        stored is an alert that will be notified, whatever crashes after (`ops.notify`'s delivery worker)."""
        now = utcnow()
        rows = [alert_row(event, now) for event in batch]
        if not rows:
            return set()
        with self.engine.begin() as conn:
            new = insert_new(conn, alerts, "alert_id", rows)
            pending = [
                {"alert_id": row["alert_id"], "level": row["level"], "created_at": now}
                for row in rows
                if row["alert_id"] in new
            ]
            if pending:
                conn.execute(insert_ignoring_conflicts(conn, notify_outbox, ["alert_id"]), pending)
            resolve_dead_letters(conn, names.ALERTS, [row["event_id"] for row in rows])
        return new

    def set_enrichments(self, batch: Iterable[Event]) -> int:
        """Keep what the agents found for events stored earlier (an association raise enriched after the fact)
        in their stored JSON; returns how many rows were updated."""
        updated = 0
        with self.engine.begin() as conn:
            for event in batch:
                payload = conn.execute(sa.select(events.c.payload).where(events.c.event_id == event.event_id)).scalar()
                if payload is None:
                    continue
                data = json.loads(payload)
                data["enrichments"] = {**(data.get("enrichments") or {}), **event.enrichments}
                conn.execute(
                    events.update()
                    .where(events.c.event_id == event.event_id)
                    .values(payload=json.dumps(data, sort_keys=True, separators=(",", ":")))
                )
                updated += 1
        return updated

    def add_reviews(self, batch: Iterable[Event]) -> set[str]:
        now = utcnow()
        return self._insert_new(review_queue, "event_id", [review_row(event, now) for event in batch])

    def add_dead_letters(self, batch: Iterable[DeadLetter]) -> set[str]:
        now = utcnow()
        return self._insert_new(dead_letters, "dead_letter_id", [dead_letter_row(letter, now) for letter in batch])

    def top_alerts(self, run_id: str, limit: int = 5) -> list[tuple[str, dict[str, Any]]]:
        """The highest-level, highest-score alerts this run created: a line each, and the event's enrichments."""
        level_rank = sa.case({"CRITICAL": 0, "HIGH": 1}, value=alerts.c.level, else_=2)
        query = (
            sa.select(alerts.c.title, alerts.c.score, events.c.event_id, events.c.event_time, events.c.payload)
            .join(events, events.c.event_id == alerts.c.event_id)
            .where(events.c.run_id == run_id)
            .order_by(level_rank, alerts.c.score.desc(), events.c.event_time)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            (f"{row.title} (score {row.score:.2f}, {row.event_id})", json.loads(row.payload).get("enrichments", {}))
            for row in rows
        ]

    def alert_volume_by_night(self, include_injected: bool = False) -> dict[str, int]:
        """Alerts (CRITICAL and HIGH) per observing night: the guide's alert-volume panel (< 50 a night)."""
        query = (
            sa.select(events.c.night, sa.func.count())
            .select_from(alerts.join(events, events.c.event_id == alerts.c.event_id))
            .group_by(events.c.night)
            .order_by(events.c.night)
        )
        if not include_injected:
            query = query.where(alerts.c.injected.is_(False))
        with self.engine.connect() as conn:
            return {str(night): int(count) for night, count in conn.execute(query)}
