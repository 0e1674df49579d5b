"""Multi-messenger associations: a trigger-counterpart link stored once, raising both events' classes by one level."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from core.event import ALERT_LEVELS, Event, raise_class, utcnow
from store.events import alert_row, review_row
from store.inserts import insert_ignoring_conflicts
from store.schema import alerts, associations, events, review_queue

RAISED_BY_ASSOCIATION = "association_raised_by"  # lineage key: the partner whose link raised the event


class AssociationQueries:
    """The hot store's associations (a part of `store.hot.HotStore`)."""

    engine: sa.Engine

    def apply_association(self, link: Any, max_raised: int | None = None) -> list[Event] | None:
        """Store a trigger-counterpart link and, if it may raise (`link.raise_classes`, and fewer than
        `max_raised` links of its trigger raised already), raise both events' classes by one level.

        Returns None if the link was already stored; otherwise the events whose raise created or raised an
        alert (for publishing). A raised event records its partner and former class in its lineage; an event is
        raised once, however many links it has.
        """
        now = utcnow()
        may_raise = bool(getattr(link, "raise_classes", True))
        with self.engine.begin() as conn:
            if may_raise and max_raised is not None:
                already = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(associations)
                    .where((associations.c.trigger_id == link.trigger_id) & associations.c.raised.is_(True))
                ).scalar()
                may_raise = (already or 0) < max_raised
            stored = {
                "trigger_id": link.trigger_id,
                "counterpart_id": link.counterpart_id,
                "separation_deg": link.separation_deg,
                "time_offset_s": link.time_offset_s,
                "created_at": now,
                "chance_probability": getattr(link, "chance_probability", None),
                "raised": may_raise,
            }
            insert = insert_ignoring_conflicts(conn, associations, ["trigger_id", "counterpart_id"])
            if conn.execute(insert.returning(associations.c.trigger_id), [stored]).first() is None:
                return None  # stored already (by this writer or a concurrent one): nothing to raise
            alerting = []
            for event_id, partner in ((link.trigger_id, link.counterpart_id), (link.counterpart_id, link.trigger_id)):
                payload = conn.execute(sa.select(events.c.payload).where(events.c.event_id == event_id)).scalar()
                if payload is None:
                    continue
                event = Event.model_validate_json(payload)
                raised = _raised(event, partner, link, may_raise)
                conn.execute(
                    events.update()
                    .where(events.c.event_id == event_id)
                    .values(
                        event_class=raised.event_class,
                        alert_level=raised.alert_level,
                        reasons=json.dumps(raised.reasons),
                        payload=raised.to_json(),
                    )
                )
                if raised.event_class == event.event_class:
                    continue
                if raised.alert_level in ("CRITICAL", "HIGH"):
                    row = alert_row(raised, now)
                    conn.execute(alerts.delete().where(alerts.c.alert_id == row["alert_id"]))
                    conn.execute(alerts.insert().values(**row))
                    alerting.append(raised)
                elif raised.event_class == "interesting":
                    conn.execute(insert_ignoring_conflicts(conn, review_queue, ["event_id"]), [review_row(raised, now)])
        return alerting


def _raised(event: Event, partner: str, link: Any, may_raise: bool) -> Event:
    partners = {name for name in event.lineage.get("associated_with", "").split(",") if name} | {partner}
    # Raised once: a second link (another counterpart of the same trigger) records the partner only.
    raise_now = may_raise and RAISED_BY_ASSOCIATION not in event.lineage
    new_class = raise_class(event.event_class) if raise_now else event.event_class
    lineage = {**event.lineage, "associated_with": ",".join(sorted(partners))}
    if raise_now:
        lineage[RAISED_BY_ASSOCIATION] = partner
    if new_class != event.event_class:
        lineage["raised_from"] = event.event_class
    probability = getattr(link, "chance_probability", None)
    chance = "" if probability is None else f", chance {probability:.2g}"
    outcome = "" if may_raise else " (linked, not raised)"
    reason = (
        f"multi-messenger: associated with {partner} ({link.separation_deg:.2f} deg, "
        f"{link.time_offset_s:+.0f} s{chance}){outcome}"
    )
    return event.model_copy(
        update={
            "event_class": new_class,
            "alert_level": ALERT_LEVELS[new_class],
            "reasons": [*event.reasons, reason],
            "lineage": lineage,
        }
    )
