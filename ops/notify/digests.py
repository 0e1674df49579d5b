"""Digests: what was held back goes out together. The pending digest (alerts over the nightly budget, new MEDIUM
review-queue items) every `digest.every_min`; the LOW digest (routine events per source) once a business day
after `digest.business_day_at`, site-local."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from config.settings import DigestSpec
from core.event import as_utc
from ops.notify.notice import THROTTLED, Clock, Notice
from ops.notify.outbox import Outbox
from store.hot import HotStore
from store.schema import alerts, deliveries, events, review_queue


class Digests:
    def __init__(
        self, store: HotStore, outbox: Outbox, spec: DigestSpec, timezone: str, portal_url: str | None, clock: Clock
    ):
        self.store = store
        self.outbox = outbox
        self.spec = spec
        self.zone = ZoneInfo(timezone)
        self.portal_url = portal_url
        self.clock = clock

    def last_digest_at(self, prefix: str = "digest:") -> datetime | None:
        query = sa.select(sa.func.max(deliveries.c.created_at)).where(deliveries.c.alert_id.startswith(prefix))
        with self.store.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return as_utc(value) if value else None

    def pending_digest(self) -> dict[str, Any]:
        """What the next digest would carry: throttled alerts not yet in a digest, and new MEDIUM review items."""
        since = self.last_digest_at() or (self.clock() - timedelta(days=1))
        with self.store.engine.connect() as conn:
            throttled = conn.execute(
                sa.select(deliveries.c.alert_id, alerts.c.title)
                .join(alerts, alerts.c.alert_id == deliveries.c.alert_id)
                .where((deliveries.c.status == THROTTLED) & deliveries.c.digest_id.is_(None))
                .distinct()
                .order_by(deliveries.c.alert_id)
            ).all()
            review = conn.execute(
                sa.select(review_queue.c.event_id)
                .where(
                    (review_queue.c.created_at > since)
                    & (review_queue.c.status == "pending")
                    & review_queue.c.injected.is_(False)
                )
                .order_by(review_queue.c.score.desc())
            ).scalars()
            review = list(review)
        return {"alerts": [(row.alert_id, row.title) for row in throttled], "review": review, "since": since}

    def send_digest(self) -> tuple[Notice | None, list[dict[str, Any]]]:
        """Send the pending digest now (over-budget alerts, new review-queue items); (None, []) if nothing is due."""
        pending = self.pending_digest()
        if not pending["alerts"] and not pending["review"]:
            return None, []
        now = self.clock()
        digest_id = f"digest:{now:%Y%m%dT%H%M%S}Z"
        n_alerts, n_review = len(pending["alerts"]), len(pending["review"])
        notice = Notice(
            key=digest_id,
            action="digest",
            title=f"Nightwatch digest: {n_alerts} alerts over the nightly budget, {n_review} new for review",
            summary=f"Since {pending['since']:%Y-%m-%d %H:%M} UTC: {n_alerts} alerts held back by the budget, "
            f"{n_review} MEDIUM events in the review queue (respond within 4 hours).",
            dedup_key=digest_id,
            timestamp=now.isoformat(),
            details={
                "alerts": [title for _id, title in pending["alerts"][:20]],
                "review_queue": pending["review"][:20],
            },
            link=self.portal_url,
        )
        results = self.outbox.broadcast(notice, self.spec.channels)
        if results:  # only a digest that went somewhere carries the alerts; otherwise they stay pending
            ids = [alert_id for alert_id, _title in pending["alerts"]]
            with self.store.engine.begin() as conn:
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.alert_id.in_(ids) & (deliveries.c.status == THROTTLED))
                    .values(digest_id=digest_id, updated_at=now)
                )
        return notice, results

    def send_low_digest(self) -> tuple[Notice | None, list[dict[str, Any]]]:
        """The next-business-day digest of LOW (routine) events since the last one, once per site-local day."""
        now = self.clock()
        local_day = now.astimezone(self.zone).date()
        digest_id = f"digest-low:{local_day.isoformat()}"
        since = self.last_digest_at("digest-low:") or self._previous_business_slot(now)
        query = (
            sa.select(events.c.source, sa.func.count())
            .where((events.c.event_class == "routine") & (events.c.stored_at > since) & events.c.injected.is_(False))
            .group_by(events.c.source)
        )
        with self.store.engine.connect() as conn:
            counts = {source: int(n) for source, n in conn.execute(query)}
        notice = Notice(
            key=digest_id,
            action="digest",
            title=f"Nightwatch LOW digest for {local_day}: {sum(counts.values())} routine events",
            summary=f"Routine (LOW) events since {since:%Y-%m-%d %H:%M} UTC, archived: "
            + (", ".join(f"{source} {n}" for source, n in sorted(counts.items())) or "none"),
            dedup_key=digest_id,
            timestamp=now.isoformat(),
            level="LOW",
            details={"routine_by_source": counts},
        )
        return notice, self.outbox.broadcast(notice, self.spec.channels)

    def _previous_business_slot(self, now: datetime) -> datetime:
        """The LOW digest's slot on the business day before `now`: on a Monday, Friday's (the weekend included)."""
        local = now.astimezone(self.zone)
        hours, minutes = (int(part) for part in self.spec.business_day_at.split(":"))
        day = local - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day.replace(hour=hours, minute=minutes, second=0, microsecond=0)

    def digests_due(self) -> list[dict[str, Any]]:
        """What `notify run` sends on its own: the pending digest every `every_min`, the LOW digest on business
        days after `business_day_at` (site-local)."""
        now, spec = self.clock(), self.spec
        sent: list[dict[str, Any]] = []
        last = self.last_digest_at()
        if last is None or now - last >= timedelta(minutes=spec.every_min):
            sent += self.send_digest()[1]
        local = now.astimezone(self.zone)
        if local.weekday() < 5 and f"{local:%H:%M}" >= spec.business_day_at:
            with self.store.engine.connect() as conn:
                done = conn.execute(
                    sa.select(deliveries.c.delivery_id).where(deliveries.c.alert_id == f"digest-low:{local.date()}")
                ).first()
            if done is None:
                sent += self.send_low_digest()[1]
        return sent
