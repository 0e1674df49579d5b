"""The outbox: the `deliveries` table, one row per alert, channel, action and level.

The row is written *before* the first attempt: its unique `delivery_key` is the claim that makes a redelivered
alert send once, and a crash mid-send leaves a `retrying` row (with a lease) that `nightwatch notify run` picks
up. Failed attempts are retried with exponential backoff until `retry.max_attempts`, then the row is `failed`.

The retries are rows, not a loop: an attempt that fails is written back with its next time and the process
moves on (the pipeline must never wait on a channel), and `send_due` makes the attempts whose time has come.
So a retry library's in-process retry loop (tenacity) does not fit here; `backoff` is its one line of arithmetic.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from config.settings import RetrySpec
from core import telemetry
from core.event import as_utc
from core.logs import log_event
from ops.notify.channels import Sender
from ops.notify.notice import DELIVERED, FAILED, PAGING_PREFIXES, REACHED, RETRYING, SUPPRESSED, Clock, Notice, is_page
from store.hot import HotStore
from store.schema import deliveries, notify_outbox

log = logging.getLogger("nightwatch.notify")


def delivery_key(notice: Notice, channel: str) -> str:
    return "|".join((notice.key, channel, notice.action, notice.level or ""))


def insert_once(store: HotStore, table: sa.Table, row: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on `keys`; True if this call inserted the row (the claim)."""
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**row).on_conflict_do_nothing(index_elements=keys)
    with store.engine.begin() as conn:
        return conn.execute(statement).rowcount == 1


def pending_alerts(store: HotStore, limit: int = 200) -> list[str]:
    """Alerts stored but not yet notified (the outbox's pending rows), CRITICAL and HIGH first, oldest first."""
    rank = sa.case({"CRITICAL": 0, "HIGH": 1}, value=notify_outbox.c.level, else_=2)
    query = (
        sa.select(notify_outbox.c.alert_id)
        .where(notify_outbox.c.done_at.is_(None))
        .order_by(rank, notify_outbox.c.created_at, notify_outbox.c.alert_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def mark_notified(store: HotStore, alert_id: str, now: Any) -> None:
    """The alert's first notification is recorded (its `deliveries` rows exist): no longer pending."""
    with store.engine.begin() as conn:
        conn.execute(
            notify_outbox.update()
            .where((notify_outbox.c.alert_id == alert_id) & notify_outbox.c.done_at.is_(None))
            .values(done_at=now)
        )


def delivery_row(row: Any) -> dict[str, Any]:
    """A `deliveries` row as a dict: times in UTC, the history parsed."""
    data = dict(row._mapping)
    for name in ("created_at", "updated_at", "next_attempt_at"):
        if data.get(name) is not None:
            data[name] = as_utc(data[name])
    data["history"] = json.loads(data["history"])
    return data


def deliveries_for(store: HotStore, alert_id: str | None = None, statuses: tuple[str, ...] = ()) -> list[dict]:
    query = sa.select(deliveries).order_by(deliveries.c.delivery_id)
    if alert_id is not None:
        query = query.where(deliveries.c.alert_id == alert_id)
    if statuses:
        query = query.where(deliveries.c.status.in_(statuses))
    with store.engine.connect() as conn:
        return [delivery_row(row) for row in conn.execute(query)]


class Outbox:
    """Records deliveries and makes their attempts through a `Sender`, with a lease and exponential backoff."""

    def __init__(self, store: HotStore, sender: Sender, retry: RetrySpec, timeout_s: float, clock: Clock):
        self.store = store
        self.sender = sender
        self.retry = retry
        self.timeout_s = timeout_s
        self.clock = clock

    def deliver(
        self, notice: Notice, channel: str, night: str | None = None, hold: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Record a delivery and make its first attempt (none if held: suppressed or throttled).

        The row is written first, as `retrying` with a lease, so a crash mid-send is retried by `notify run` and a
        second worker handling the same alert finds the row and sends nothing.
        """
        now = self.clock()
        key = delivery_key(notice, channel)
        status, reason = hold if hold else (RETRYING, None)
        row = {
            "delivery_key": key,
            "alert_id": notice.key,
            "channel": channel,
            "action": notice.action,
            "level": notice.level,
            "night": night,
            "recipient": notice.recipient,
            "status": status,
            "attempt": 0,
            "error": reason,
            "next_attempt_at": None if hold else now + self.lease(),
            "notice": notice.to_json(),
            "history": "[]",
            "created_at": now,
            "updated_at": now,
        }
        if insert_once(self.store, deliveries, row, ["delivery_key"]) and not hold:
            return self.attempt(self.get(key))
        return self.get(key)

    def broadcast(self, notice: Notice, channels: list[str], night: str | None = None) -> list[dict[str, Any]]:
        """Send a notice on every channel that has a destination (announcements, digests)."""
        return [
            self.deliver(notice, name, night=night)
            for name in channels
            if self.sender.channels[name].destination() is not None
        ]

    def lease(self) -> timedelta:
        # Long enough for one attempt to finish: nobody else picks the row up meanwhile.
        return timedelta(seconds=self.timeout_s + 60)

    def backoff(self, attempt: int) -> timedelta:
        return timedelta(seconds=min(self.retry.backoff_s * 2 ** (attempt - 1), self.retry.max_backoff_s))

    def get(self, key: str) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            return delivery_row(conn.execute(sa.select(deliveries).where(deliveries.c.delivery_key == key)).one())

    def attempt(self, row: dict[str, Any]) -> dict[str, Any]:
        notice = Notice.from_json(row["notice"])
        outcome = self.sender.send(row["channel"], notice)
        now = self.clock()
        attempt = row["attempt"] + 1
        if outcome.ok:
            status, next_at = DELIVERED, None
        elif outcome.permanent or attempt >= self.retry.max_attempts:
            status, next_at = FAILED, None
        else:
            status, next_at = RETRYING, now + self.backoff(attempt)
        history = [*row["history"], {"attempt": attempt, "at": now.isoformat(), "status": status}]
        history[-1] |= {"code": outcome.code, "error": outcome.error}
        values = {
            "status": status,
            "attempt": attempt,
            "response_code": outcome.code,
            "error": outcome.error,
            "next_attempt_at": next_at,
            "history": json.dumps(history),
            "updated_at": now,
        }
        with self.store.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.delivery_id == row["delivery_id"]).values(**values))
        telemetry.DELIVERIES.labels(row["channel"], status).inc()
        if status != DELIVERED:
            log_event(
                log,
                "delivery_failed",
                f"{notice.key} on {row['channel']}: {status} ({outcome.error})",
                level=logging.WARNING,
                alert_id=notice.key,
                channel=row["channel"],
                status=status,
                attempt=attempt,
                error=outcome.error,
            )
        return {**row, **values, "history": history}

    def pending(self) -> int:
        """Deliveries waiting for an attempt (status `retrying`): the outbox's size."""
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status == RETRYING)
            ).scalar_one()

    def send_due(self, limit: int = 200) -> list[dict[str, Any]]:
        """Make the next attempt of every delivery whose backoff has passed (and of any left mid-send)."""
        now = self.clock()
        query = (
            sa.select(deliveries)
            .where((deliveries.c.status == RETRYING) & (deliveries.c.next_attempt_at <= now))
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            due = [delivery_row(row) for row in conn.execute(query)]
        done = []
        for row in due:
            # Claim the attempt: only one runner moves the lease forward from this exact state.
            claim = (
                deliveries.update()
                .where(
                    (deliveries.c.delivery_id == row["delivery_id"])
                    & (deliveries.c.status == RETRYING)
                    & (deliveries.c.attempt == row["attempt"])
                    & (deliveries.c.next_attempt_at <= now)
                )
                .values(next_attempt_at=now + self.lease())
            )
            with self.store.engine.begin() as conn:
                if conn.execute(claim).rowcount != 1:
                    continue
            done.append(self.attempt(row))
        return done

    def withdraw_pages(self, alert_id: str, action: str, channels: list[str]) -> list[str]:
        """An alert was acknowledged or resolved: its pages still waiting for a retry are `suppressed` (they would
        open the incident again); the channels among `channels` a page may have reached, sorted."""
        with self.store.engine.begin() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.channel, deliveries.c.action, deliveries.c.status).where(
                    (deliveries.c.alert_id == alert_id) & deliveries.c.channel.in_(channels)
                )
            ).all()
            conn.execute(
                deliveries.update()
                .where(
                    (deliveries.c.alert_id == alert_id)
                    & (deliveries.c.status == RETRYING)
                    & sa.or_(*(deliveries.c.action.startswith(prefix) for prefix in PAGING_PREFIXES))
                )
                .values(status=SUPPRESSED, error=f"alert {action}d before this page went out", next_attempt_at=None)
            )
        return sorted({row.channel for row in rows if is_page(row.action) and row.status in REACHED})
