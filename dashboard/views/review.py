"""The review queue: interesting (MEDIUM) events to promote, reject or comment on. A decision is recorded (who,
when, note), goes onto the event's lineage and into the archive tier as a decision record."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from access.accounts import User
from core.event import as_utc, utcnow
from dashboard import context, ui
from dashboard.decisions import archive_decision
from dashboard.event_view import show_event
from dashboard.views.alerts import timer
from ops import responses
from store.schema import events, review_queue

STATUSES = ["pending", "promoted", "rejected"]


def load_queue() -> list[dict[str, Any]]:
    query = (
        sa.select(
            review_queue.c.event_id,
            review_queue.c.status,
            review_queue.c.score,
            review_queue.c.injected,
            review_queue.c.created_at,
            events.c.source,
            events.c.kind,
            events.c.mag,
            events.c.night,
        )
        .select_from(review_queue.outerjoin(events, events.c.event_id == review_queue.c.event_id))
        .order_by(review_queue.c.created_at.desc(), review_queue.c.event_id)
    )
    with context.store().engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _decide(user: User, item: dict[str, Any], decision: str, note: str) -> str:
    """Record the decision, then write it to the archive (after the commit: a failed file write loses nothing)."""
    made = responses.decide_review(context.store(), user.name, item["event_id"], decision, note)
    try:
        path = archive_decision(context.settings().archive_root, item["night"] or "unknown", made)
    except OSError as exc:
        return f"Decision recorded ({made.status}); writing it to the archive failed: {exc}"
    raised = f"; raised to alert {made.alert_id} (portal, SLA timer, notified)" if made.alert_id else ""
    return f"Decision recorded: {decision} ({made.status}){raised}, archived in {path}"


def render(user: User) -> None:
    st.title("Review queue")
    zone = context.config().sources.site.timezone
    rows = load_queue()
    statuses = st.multiselect("Status", STATUSES, default=["pending"], key="review_statuses")
    shown = [row for row in rows if row["status"] in statuses]
    now = utcnow()
    frame = pd.DataFrame(
        [
            {
                "status": row["status"],
                "response timer": timer("MEDIUM", as_utc(row["created_at"]), None, now, zone)[0]
                if row["status"] == "pending"
                else "decided",
                "source": row["source"],
                "kind": row["kind"],
                "mag": row["mag"],
                "score": row["score"],
                "queued": ui.iso(as_utc(row["created_at"])),
                "event": row["event_id"],
            }
            for row in shown
        ]
    )
    st.caption(f"{sum(row['status'] == 'pending' for row in rows)} pending of {len(rows)}. MEDIUM: respond < 4 h.")
    if frame.empty:
        st.info("Nothing in the queue with these statuses.")
        return
    st.dataframe(frame, hide_index=True, width="stretch", column_config=ui.SCORE_COLUMN)

    chosen = st.selectbox("Event", [row["event_id"] for row in shown], key="review_chosen")
    item = next(row for row in shown if row["event_id"] == chosen)
    allowed = user.can("decide_reviews")
    note = st.text_area("Note (required)", key=f"review_note:{chosen}")
    buttons = st.columns(3)
    for column, (decision, label) in zip(
        buttons, (("promote", "Approve (promote)"), ("reject", "Reject"), ("comment", "Comment")), strict=True
    ):
        if column.button(label, key=f"{decision}:{chosen}", disabled=not allowed):
            ui.run_action(lambda decision=decision: _decide(user, item, decision, note), lambda message: message)
    if not allowed:
        st.caption("Deciding review items needs the Operator role.")
    history = responses.review_history(context.store(), chosen)
    if history:
        st.dataframe(pd.DataFrame(history)[["at", "decision", "actor", "note"]], hide_index=True, width="stretch")
    st.subheader("The event")
    show_event(chosen)
