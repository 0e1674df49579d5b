"""One count of each alert level, for every place that shows one: the run and stream summaries, the alert portal,
the monitoring page and the API's `/v1/alerts/counts` all read `level_counts`.

Each event counts once, at its level now: CRITICAL and HIGH are the stored alerts (association raises and review
promotions included: an event raised from HIGH to CRITICAL counts as CRITICAL only); MEDIUM is the review queue's
items whose event is still MEDIUM (an item promoted or raised to an alert has left MEDIUM) plus any MEDIUM alert;
LOW is the routine events archived without a response. `waiting` is what still needs someone: an open,
acknowledged or escalated alert (not resolved), a pending review item. Injected test events are left out.
`run_id` narrows the counts to one run's events (what a run summary reports).
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


def level_counts(store: HotStore, run_id: str | None = None) -> dict[str, LevelCount]:
    totals = {level: 0 for level in LEVELS}
    waiting = {level: 0 for level in LEVELS}
    unresolved = sa.case((alerts.c.status != "resolved", 1), else_=0)
    pending = sa.case((review_queue.c.status == "pending", 1), else_=0)
    of_run = [events.c.run_id == run_id] if run_id is not None else []
    with store.engine.connect() as conn:
        query = (
            sa.select(alerts.c.level, sa.func.count(), sa.func.sum(unresolved))
            .select_from(alerts.outerjoin(events, events.c.event_id == alerts.c.event_id))
            .where(alerts.c.injected.is_(False), *of_run)
            .group_by(alerts.c.level)
        )
        for level, count, open_count in conn.execute(query):
            if level in totals:
                totals[level] += count
                waiting[level] += int(open_count or 0)
        queued = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(pending))
            .select_from(review_queue.join(events, events.c.event_id == review_queue.c.event_id))
            .where(review_queue.c.injected.is_(False), events.c.alert_level == "MEDIUM", *of_run)
        ).one()
        totals["MEDIUM"] += queued[0]
        waiting["MEDIUM"] += int(queued[1] or 0)
        totals["LOW"] = conn.execute(
            sa.select(sa.func.count()).where(events.c.alert_level == "LOW", events.c.injected.is_(False), *of_run)
        ).scalar()
    return {level: LevelCount(level, totals[level], waiting[level]) for level in LEVELS}


def level_totals(store: HotStore, run_id: str | None = None) -> dict[str, int]:
    """Each level's total, as a run summary shows it."""
    return {level: count.total for level, count in level_counts(store, run_id).items()}
