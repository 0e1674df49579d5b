"""What operators do with alerts and review items: acknowledge, escalate, resolve; promote, reject, comment.

Each action checks the actor's role (`access.accounts.acting`) and is audited in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from access.accounts import acting
from access.audit import audit
from access.roles import AccessError
from core.event import ALERT_LEVELS, Event, as_utc, raise_class, utcnow
from ops.notify import alert_action_hook
from ops.notify.notifier import new_alert_hook
from store.events import alert_row
from store.hot import HotStore
from store.schema import alert_actions, alerts, events, review_decisions, review_queue

# --- alerts: acknowledge, escalate, resolve ------------------------------------------------------------------

# The guide's alert response table: how soon each level must be acknowledged.
RESPONSE_TARGETS: dict[str, timedelta | None] = {
    "CRITICAL": timedelta(minutes=15),
    "HIGH": timedelta(hours=1),
    "MEDIUM": timedelta(hours=4),
    "LOW": None,  # next business day: see response_deadline
}
RESPONDERS = {"CRITICAL": "On-call + Science", "HIGH": "On-call", "MEDIUM": "Ops team", "LOW": "Ops team"}

# Which status each action leads to, and from which statuses it may be taken.
ALERT_TRANSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "acknowledge": ("acknowledged", ("open",)),
    "escalate": ("escalated", ("open", "acknowledged")),
    "resolve": ("resolved", ("open", "acknowledged", "escalated")),
}


def response_deadline(level: str, created_at: datetime, site_zone: str = "UTC") -> datetime:
    """When an alert must have been acknowledged. LOW: the end (17:00 local) of the next business day."""
    target = RESPONSE_TARGETS.get(level)
    if target is not None:
        return created_at + target
    from zoneinfo import ZoneInfo

    local = created_at.astimezone(ZoneInfo(site_zone))
    day = local + timedelta(days=1)
    while day.weekday() >= 5:  # Saturday, Sunday
        day += timedelta(days=1)
    return day.replace(hour=17, minute=0, second=0, microsecond=0)


def alert_action(store: HotStore, actor: str, alert_id: str, action: str, note: str) -> str:
    """Acknowledge, escalate or resolve an alert (Operator and above), with a note; returns the new status."""
    acting(store, actor, "acknowledge_alerts")
    if action not in ALERT_TRANSITIONS:
        raise AccessError(f"unknown alert action {action!r}: one of {', '.join(ALERT_TRANSITIONS)}")
    if not note.strip():
        raise AccessError(f"{action} needs a note (what was done, who was told)")
    new_status, allowed_from = ALERT_TRANSITIONS[action]
    with store.engine.begin() as conn:
        status = conn.execute(sa.select(alerts.c.status).where(alerts.c.alert_id == alert_id)).scalar()
        if status is None:
            raise AccessError(f"no alert {alert_id!r}")
        if status not in allowed_from:
            raise AccessError(f"alert is {status}: cannot {action} it")
        conn.execute(alerts.update().where(alerts.c.alert_id == alert_id).values(status=new_status))
        conn.execute(
            alert_actions.insert().values(alert_id=alert_id, action=action, actor=actor, note=note.strip(), at=utcnow())
        )
        audit(conn, actor, f"alert.{action}", alert_id, {"status": status}, {"status": new_status}, note.strip())
    # The pages follow the portal: an acknowledge or resolve goes to PagerDuty for the same dedup_key (never raises).

    alert_action_hook(store, alert_id, action)
    return new_status


def alert_actions_bulk(store: HotStore, actor: str, alert_ids: list[str], action: str, note: str) -> dict[str, str]:
    """The same action with one note on many alerts (a storm): each one through `alert_action`, so each is checked,
    recorded and audited on its own. Returns each alert's new status, or why it was refused ("refused: ...");
    a refusal of the actor's role stops the batch (PermissionDenied), an alert in the wrong state is skipped."""
    acting(store, actor, "acknowledge_alerts")
    if not note.strip():
        raise AccessError(f"{action} needs a note (what was done, who was told)")
    outcome: dict[str, str] = {}
    for alert_id in dict.fromkeys(alert_ids):
        try:
            outcome[alert_id] = alert_action(store, actor, alert_id, action, note)
        except AccessError as exc:
            outcome[alert_id] = f"refused: {exc}"
    return outcome


def alert_history(store: HotStore, alert_id: str) -> list[dict[str, Any]]:
    query = sa.select(alert_actions).where(alert_actions.c.alert_id == alert_id).order_by(alert_actions.c.action_id)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def first_responses(store: HotStore) -> dict[str, datetime]:
    """When each alert was first acted on (acknowledged, escalated or resolved): the end of its response timer."""
    query = sa.select(alert_actions.c.alert_id, sa.func.min(alert_actions.c.at)).group_by(alert_actions.c.alert_id)
    with store.engine.connect() as conn:
        return {alert_id: as_utc(at) for alert_id, at in conn.execute(query)}


# --- the review queue: promote, reject, comment ---------------------------------------------------------------

REVIEW_DECISIONS = {"promote": "promoted", "reject": "rejected", "comment": None}


@dataclass(frozen=True)
class ReviewDecision:
    event_id: str
    decision: str
    actor: str
    note: str
    at: datetime
    status: str  # the queue item's status after the decision
    alert_id: str | None = None  # the alert a promotion raised the event to


def decide_review(store: HotStore, actor: str, event_id: str, decision: str, note: str) -> ReviewDecision:
    """Promote, reject or comment on a review-queue event (Operator and above).

    The decision is recorded (who, when, note), the queue item's status follows it, and the event's lineage
    carries it (`review`, `reviewed_by`, `reviewed_at`), so the archive and replays see what people decided.
    Writing the decision record into the archive tier is the caller's second step (dashboard.decisions), done
    after this commit so a failed file write never loses the decision.
    """
    acting(store, actor, "decide_reviews")
    if decision not in REVIEW_DECISIONS:
        raise AccessError(f"unknown decision {decision!r}: one of {', '.join(REVIEW_DECISIONS)}")
    if not note.strip():
        raise AccessError(f"{decision} needs a note")
    at = utcnow()
    with store.engine.begin() as conn:
        status = conn.execute(sa.select(review_queue.c.status).where(review_queue.c.event_id == event_id)).scalar()
        if status is None:
            raise AccessError(f"{event_id!r} is not in the review queue")
        new_status = REVIEW_DECISIONS[decision] or status
        if REVIEW_DECISIONS[decision] and status != "pending":
            raise AccessError(f"the item is already {status}: comment on it instead")
        conn.execute(review_queue.update().where(review_queue.c.event_id == event_id).values(status=new_status))
        conn.execute(
            review_decisions.insert().values(
                event_id=event_id, decision=decision, actor=actor, note=note.strip(), at=at
            )
        )
        payload = conn.execute(sa.select(events.c.payload).where(events.c.event_id == event_id)).scalar()
        alert_id = None
        if payload is not None and decision != "comment":
            event = Event.model_validate_json(payload)
            lineage = {**event.lineage, "review": new_status, "reviewed_by": actor, "reviewed_at": at.isoformat()}
            update: dict[str, Any] = {"lineage": lineage}
            if decision == "promote":  # raised one level (interesting -> significant: a HIGH alert), with why
                new_class = raise_class(event.event_class)
                lineage.update(raised_from=event.event_class, promoted_by=actor, promoted_because=note.strip())
                reason = f"promoted by {actor} from the review queue: {note.strip()}"
                update.update(event_class=new_class, alert_level=ALERT_LEVELS[new_class])
                update["reasons"] = [*event.reasons, reason]
            raised = event.model_copy(update=update)
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
            if decision == "promote" and raised.alert_level in ("CRITICAL", "HIGH"):
                row = alert_row(raised, at)
                exists = conn.execute(sa.select(alerts.c.alert_id).where(alerts.c.alert_id == row["alert_id"]))
                if exists.first() is None:
                    conn.execute(alerts.insert().values(**row))
                    alert_id = row["alert_id"]
        after = {"status": new_status, **({"alert": alert_id} if alert_id else {})}
        audit(conn, actor, f"review.{decision}", event_id, {"status": status}, after, note.strip())
    if alert_id is not None:
        new_alert_hook(store, alert_id)  # notified like any new alert of its level (never raises)
    return ReviewDecision(event_id, decision, actor, note.strip(), at, new_status, alert_id)


def review_history(store: HotStore, event_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(review_decisions)
        .where(review_decisions.c.event_id == event_id)
        .order_by(review_decisions.c.decision_id)
    )
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
