"""The alert portal: alerts by level and status, most urgent first (CRITICAL pinned, then overdue, then by
deadline), with the guide's response times as timers; acknowledge, escalate or resolve with a note; the event
behind each alert. The list, counters and timers refresh in place while the page is open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from access.accounts import User
from access.roles import AccessError, PermissionDenied
from config.environment import environment
from core.event import as_utc, utcnow
from dashboard import context, ui
from dashboard.event_view import show_event
from ops import responses
from ops.levels import level_counts
from ops.responses import RESPONDERS, response_deadline
from store.schema import alerts, events

LEVELS = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
STATUSES = ["open", "acknowledged", "escalated", "resolved"]
TIMER_REFRESH_S = environment().console_refresh_s  # NIGHTWATCH_CONSOLE_REFRESH_S
SEEN, ANNOUNCED = "alerts_seen_critical", "alerts_announced_critical"
ORDER, SELECTED, TABLE_VERSION = "alerts_order", "alerts_selected", "alerts_table_version"
BULK_NOTE = "alerts_bulk_note"


def load_alerts() -> list[dict[str, Any]]:
    query = (
        sa.select(
            alerts.c.alert_id,
            alerts.c.event_id,
            alerts.c.level,
            alerts.c.status,
            alerts.c.score,
            alerts.c.title,
            alerts.c.injected,
            alerts.c.created_at,
            events.c.source,
            events.c.night,
        )
        .select_from(alerts.outerjoin(events, events.c.event_id == alerts.c.event_id))
        # Newest first; among alerts of the same moment (one batch), the most urgent level first.
        .order_by(alerts.c.created_at.desc(), sa.case(LEVEL_RANK, value=alerts.c.level, else_=9), alerts.c.alert_id)
    )
    with context.store().engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def timer(level: str, created: datetime, responded: datetime | None, now: datetime, zone: str) -> tuple[str, bool]:
    """The response timer's text, and whether the alert is overdue (not acted on within its target)."""
    deadline = response_deadline(level, created, zone)
    if responded is not None:
        late = responded > deadline
        return f"responded in {ui.ago(responded - created)}{' (late)' if late else ''}", False
    if now > deadline:
        return f"OVERDUE by {ui.ago(now - deadline)}", True
    return f"{ui.ago(deadline - now)} left", False


def _table(rows: list[dict[str, Any]], responses: dict[str, datetime], zone: str) -> pd.DataFrame:
    now = utcnow()
    shown = []
    for row in rows:
        created = as_utc(row["created_at"])
        responded = responses.get(row["alert_id"]) if row["status"] != "open" else None
        text, overdue = timer(row["level"], created, responded, now, zone)
        shown.append(
            {
                "level": row["level"],
                "status": row["status"],
                "response timer": text,
                "overdue": overdue,
                "title": row["title"],
                "created": ui.iso(created),
                "responder": RESPONDERS.get(row["level"], ""),
                "score": row["score"],
                "injected": bool(row["injected"]),
                "alert": row["alert_id"],
            }
        )
    return pd.DataFrame(shown)


def _new_critical(rows: list[dict[str, Any]]) -> None:
    """A CRITICAL that arrived while the portal is open stands out: a banner until marked seen, and (if chosen)
    a sound the first time it is shown. Those already there when the portal opened are in the counters."""
    critical = {row["alert_id"]: row for row in rows if row["level"] == "CRITICAL" and not row["injected"]}
    if SEEN not in st.session_state:
        st.session_state[SEEN] = set(critical)
        st.session_state[ANNOUNCED] = set(critical)
    new = [row for alert_id, row in critical.items() if alert_id not in st.session_state[SEEN]]
    if not new:
        return
    titles = "; ".join(f"{row['title']} ({ui.when(as_utc(row['created_at']))})" for row in new[:3])
    more = f" and {len(new) - 3} more" if len(new) > 3 else ""
    st.error(f"**New CRITICAL alert{'s' if len(new) > 1 else ''}** ({len(new)}): {titles}{more}", icon="🚨")
    seen = {row["alert_id"] for row in new}
    st.button("Mark as seen", key="critical_seen", on_click=lambda: st.session_state[SEEN].update(seen))
    unannounced = [row for row in new if row["alert_id"] not in st.session_state[ANNOUNCED]]
    if unannounced and st.session_state.get("alert_sound"):
        st.audio(ui.chime(), format="audio/wav", autoplay=True)
    st.session_state[ANNOUNCED] |= {row["alert_id"] for row in unannounced}


def _counters() -> None:
    """One count of each level (ops.levels, as the API gives it): what still needs someone, of how many."""
    counts = level_counts(context.store())
    columns = st.columns(len(LEVELS))
    for column, level in zip(columns, LEVELS, strict=True):
        count = counts[level]
        where = "pending in the review queue" if level == "MEDIUM" else "not resolved"
        column.metric(level, f"{count.waiting:,}", help=f"{count.waiting:,} {where}, of {count.total:,}")


def by_urgency(rows: list[dict[str, Any]], zone: str, now: datetime) -> list[dict[str, Any]]:
    """Waiting alerts first: CRITICAL pinned on top, then the overdue, then by deadline; then those acted on."""

    def key(row: dict[str, Any]) -> tuple:
        deadline = response_deadline(row["level"], as_utc(row["created_at"]), zone)
        waiting = row["status"] == "open"
        return (not waiting, row["level"] != "CRITICAL", not (waiting and now > deadline), deadline, row["alert_id"])

    return sorted(rows, key=key)


def _filtered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state = st.session_state
    levels, statuses = state.get("alert_levels", LEVELS), state.get("alert_statuses", STATUSES[:3])
    sources, injected = state.get("alert_sources"), state.get("alert_injected", False)
    text = (state.get("alert_search") or "").strip().lower()
    return [
        row
        for row in rows
        if row["level"] in levels
        and row["status"] in statuses
        and (sources is None or row["source"] in sources or not row["source"])
        and (injected or not row["injected"])
        and (not text or text in (row["title"] or "").lower() or text in row["event_id"].lower())
    ]


def _table_key() -> str:
    return f"alert_rows:{st.session_state.get(TABLE_VERSION, 0)}"  # a new key clears the table's selection


def _selected_changed() -> None:
    """The rows clicked, as alert ids, mapped through the order shown when they were clicked (a refresh may
    reorder the list later: the ids stay right). One row picks the alert to respond to."""
    rows = st.session_state[_table_key()].selection.rows
    order = st.session_state.get(ORDER, [])
    ids = [order[index] for index in rows if index < len(order)]
    st.session_state[SELECTED] = ids
    if len(ids) == 1:
        st.session_state["alert_chosen"] = ids[0]


def _stable(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """While rows are selected, keep the order they were clicked in (new alerts go below), so a refresh does
    not move the selection onto other alerts; otherwise the urgency order."""
    order = st.session_state.get(ORDER, [])
    if not st.session_state.get(SELECTED) or not order:
        return shown
    position = {alert_id: index for index, alert_id in enumerate(order)}
    return sorted(shown, key=lambda row: position.get(row["alert_id"], len(order)))


def _alert_list(frame: pd.DataFrame) -> None:
    overdue = int(frame["overdue"].sum())
    if overdue:
        st.error(f"{overdue} alert(s) overdue: past the guide's response time without being acknowledged.")

    def highlight(row: pd.Series) -> list[str]:
        colour = "background-color: rgba(255, 60, 60, 0.25)" if row["overdue"] else ""
        return [colour] * len(row)

    st.session_state[ORDER] = list(frame["alert"])
    st.dataframe(
        frame.style.apply(highlight, axis=1),
        hide_index=True,
        width="stretch",
        column_config=ui.SCORE_COLUMN,
        key=_table_key(),
        on_select=_selected_changed,
        selection_mode="multi-row",
    )
    st.caption(
        "Click a row to respond to it; select several to acknowledge or resolve them with one note. Response "
        "times (guide): CRITICAL < 15 min, HIGH < 1 hour, MEDIUM < 4 hours, LOW next business day (17:00 site "
        f"time). The list, counters and timers refresh every {TIMER_REFRESH_S} s."
    )


def _act_on_many(user: User, alert_ids: list[str], action: str) -> None:
    """The bulk buttons' callback: one note, each alert acted on (and audited) on its own by ops.responses."""
    note = st.session_state.get(BULK_NOTE, "")
    try:
        outcome = responses.alert_actions_bulk(context.store(), user.name, alert_ids, action, note)
    except PermissionDenied as exc:
        ui.flash("error", f"Refused: {exc}")
        return
    except (AccessError, ValueError) as exc:
        ui.flash("error", str(exc))
        return
    refused = {alert_id: why for alert_id, why in outcome.items() if why.startswith("refused")}
    done = len(outcome) - len(refused)
    skipped = f"; {len(refused)} skipped ({next(iter(refused.values()))})" if refused else ""
    ui.flash("success", f"{done} alert(s) {action}d with one note, each audited{skipped}.")
    st.session_state[BULK_NOTE] = ""
    st.session_state[SELECTED] = []
    st.session_state[TABLE_VERSION] = st.session_state.get(TABLE_VERSION, 0) + 1
    st.session_state.pop("alert_chosen", None)


def _bulk(user: User, shown: list[dict[str, Any]]) -> None:
    by_id = {row["alert_id"]: row for row in shown}
    chosen = [alert_id for alert_id in st.session_state.get(SELECTED, []) if alert_id in by_id]
    if len(chosen) < 2:
        return
    st.subheader(f"Respond to {len(chosen)} selected alerts")
    levels = pd.Series([by_id[alert_id]["level"] for alert_id in chosen]).value_counts()
    st.markdown(", ".join(f"**{count}** {level}" for level, count in levels.items()))
    allowed = user.can("acknowledge_alerts")
    st.text_area("Note for all of them (required)", key=BULK_NOTE)
    left, right, _ = st.columns([1, 1, 2])
    for column, action in ((left, "acknowledge"), (right, "resolve")):
        column.button(
            f"{action.capitalize()} {len(chosen)}",
            key=f"bulk:{action}",
            disabled=not allowed,
            on_click=_act_on_many,
            args=(user, chosen, action),
        )


@st.fragment(run_every=TIMER_REFRESH_S)
def _portal(user: User, zone: str) -> None:
    """Everything that changes while the portal is open, re-read from the store on every refresh."""
    rows = load_alerts()
    _new_critical(rows)
    _counters()
    shown = _stable(by_urgency(_filtered(rows), zone, utcnow()))
    frame = _table(shown, responses.first_responses(context.store()), zone)
    if frame.empty:
        st.info("No alert matches the filters.")
        return
    _alert_list(frame)
    _bulk(user, shown)
    st.subheader("Respond")
    labels = {row["alert_id"]: f"{row['level']} · {row['status']} · {row['title']}" for row in shown}
    if st.session_state.get("alert_chosen") not in labels:
        st.session_state.pop("alert_chosen", None)
    chosen = st.selectbox("Alert", list(labels), format_func=labels.__getitem__, key="alert_chosen")
    alert = next(row for row in shown if row["alert_id"] == chosen)
    _actions(user, alert)
    st.subheader("The event behind the alert")
    show_event(alert["event_id"])


def _act(user: User, alert_id: str, action: str, note_key: str) -> None:
    """A button's callback (before the page is drawn again): do the action; on success clear the note and the
    picker, so the next action starts afresh (the picker goes back to the most urgent alert)."""
    try:
        status = responses.alert_action(
            context.store(), user.name, alert_id, action, st.session_state.get(note_key, "")
        )
    except PermissionDenied as exc:
        ui.flash("error", f"Refused: {exc}")
        return
    except (AccessError, ValueError) as exc:
        ui.flash("error", str(exc))
        return
    ui.flash("success", f"Alert {action}d: now {status}.")
    st.session_state[note_key] = ""
    st.session_state.pop("alert_chosen", None)


def _actions(user: User, alert: dict[str, Any]) -> None:
    allowed = user.can("acknowledge_alerts")
    st.markdown(f"**{alert['title']}** · status **{alert['status']}**")
    note_key = f"note:{alert['alert_id']}"
    st.text_area("Note (required: what was done, who was told)", key=note_key)
    buttons = st.columns(3)
    for column, (action, label) in zip(
        buttons, (("acknowledge", "Acknowledge"), ("escalate", "Escalate"), ("resolve", "Resolve")), strict=True
    ):
        column.button(
            label,
            key=f"{action}:{alert['alert_id']}",
            disabled=not allowed,
            on_click=_act,
            args=(user, alert["alert_id"], action, note_key),
        )
    if not allowed:
        st.caption("Acknowledging, escalating and resolving alerts needs the Operator role.")
    history = responses.alert_history(context.store(), alert["alert_id"])
    if history:
        frame = pd.DataFrame(history)[["at", "action", "actor", "note"]]
        frame["at"] = [ui.iso(moment) for moment in frame["at"]]
        st.dataframe(frame, hide_index=True, width="stretch")


def render(user: User) -> None:
    st.title("Alert portal")
    zone = context.config().sources.site.timezone
    filters = st.columns([2, 2, 2, 1, 1])
    filters[0].multiselect("Level", LEVELS, default=LEVELS, key="alert_levels")
    filters[1].multiselect("Status", STATUSES, default=STATUSES[:3], key="alert_statuses")
    sources = sorted(context.config().sources.sources)
    filters[2].multiselect("Source", sources, default=sources, key="alert_sources")
    filters[3].checkbox("Injected", value=False, key="alert_injected", help="show injected test alerts")
    filters[4].toggle("Sound", value=False, key="alert_sound", help="play a chime when a new CRITICAL arrives")
    st.text_input("Search titles and event ids", key="alert_search")
    _portal(user, zone)
