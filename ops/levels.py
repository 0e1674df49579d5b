"""One count of each alert level, for every place that shows one (the alert portal, the API's `/v1/alerts/counts`).

CRITICAL and HIGH are the stored alerts, association raises and review promotions included (they are alerts
too); MEDIUM is the review queue (where MEDIUM events wait for a person) plus any MEDIUM alert; LOW is the
routine events archived without a response. `waiting` is what still needs someone: an open or acknowledged or
escalated alert (not resolved), a pending review item. Injected test events are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from store.hot import HotStore
from store.schema import alerts, events, review_queue

LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


@dataclass(frozen=True)
class LevelCount:
    level: str
    total: int
    waiting: int  # not resolved (alerts) / pending (review queue)


def level_counts(store: HotStore) -> dict[str, LevelCount]:
    totals = {level: 0 for level in LEVELS}
    waiting = {level: 0 for level in LEVELS}
    unresolved = sa.case((alerts.c.status != "resolved", 1), else_=0)
    pending = sa.case((review_queue.c.status == "pending", 1), else_=0)
    with store.engine.connect() as conn:
        query = (
            sa.select(alerts.c.level, sa.func.count(), sa.func.sum(unresolved))
            .where(alerts.c.injected.is_(False))
            .group_by(alerts.c.level)
        )
        for level, count, open_count in conn.execute(query):
            if level in totals:
                totals[level] += count
                waiting[level] += int(open_count or 0)
        queued = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(pending)).where(review_queue.c.injected.is_(False))
        ).one()
        totals["MEDIUM"] += queued[0]
        waiting["MEDIUM"] += int(queued[1] or 0)
        totals["LOW"] = conn.execute(
            sa.select(sa.func.count()).where(events.c.alert_level == "LOW", events.c.injected.is_(False))
        ).scalar()
    return {level: LevelCount(level, totals[level], waiting[level]) for level in LEVELS}
