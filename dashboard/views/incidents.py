"""Incidents: the watcher's incidents, newest first; one incident's checklist to tick, its pages, timeline and
review; acknowledge, note (and publish), resolve and review it, and update the public status page (Operator and
above, checked again in ops.incidents and ops.statuspage)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from access.accounts import User
from dashboard import context, ui
from ops import incidents, statuspage


def _listing(found: list[incidents.Incident]) -> None:
    frame = pd.DataFrame(
        [
            {
                "incident": incident.name,
                "severity": incident.severity,
                "status": incident.status,
                "opened (UTC)": ui.iso(incident.opened_at),
                "title": incident.title,
                "latest update": f"{incident.latest['kind']}: {incident.latest['text']}" if incident.latest else "",
            }
            for incident in found
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def _checklist(user: User, incident: incidents.Incident, allowed: bool) -> None:
    st.subheader(f"Procedure: {incident.procedure or 'none'}")
    for item in incident.checklist:
        done = item["done_at"] is not None
        label = f"{item['step']}. {item['text']}" + (
            f" — {item['done_by']} at {ui.iso(item['done_at'])}" if done else ""
        )
        # The state is part of the key: a step ticked elsewhere (the CLI, acknowledging) is a new box, not this
        # session's stale one, which would untick it on the next run.
        key = f"incident_step:{incident.incident_id}:{item['step']}:{int(done)}"
        ticked = st.checkbox(label, value=done, key=key, disabled=not allowed or incident.status == "resolved")
        if ticked != done:
            ui.run_action(
                lambda step=item["step"], ticked=ticked: incidents.tick(
                    context.store(), user.name, incident.incident_id, step, "ticked in the console", done=ticked
                ),
                f"Step {item['step']} {'done' if ticked else 'not done'}.",
            )


def _respond(user: User, incident: incidents.Incident) -> None:
    store, config = context.store(), context.config()
    key = incident.incident_id
    note = st.text_area("Note (required)", key=f"incident_note:{key}")
    buttons = st.columns(3)
    if buttons[0].button("Acknowledge", key=f"incident_ack:{key}", disabled=incident.status != "open"):
        ui.run_action(
            lambda: incidents.acknowledge(store, user.name, key, note, config=config),
            f"{incident.name} acknowledged: the escalation ladder stops.",
        )
    public = st.checkbox(
        "Also publish this note on the public status page (write it for visitors)", key=f"incident_public:{key}"
    )
    if buttons[1].button("Add note", key=f"incident_addnote:{key}"):
        ui.run_action(
            lambda: incidents.add_note(store, user.name, key, note, public=public),
            "Note added to the timeline" + (" and published on the status page." if public else "."),
        )
    if buttons[2].button("Resolve", key=f"incident_resolve:{key}", disabled=incident.status == "resolved"):
        ui.run_action(
            lambda: incidents.resolve(store, user.name, key, note, config=config), f"{incident.name} resolved."
        )
    if incident.status == "resolved":
        st.subheader("Post-incident review")
        current = incident.review or {}
        summary = st.text_area("Summary", value=current.get("summary", ""), key=f"incident_rv_summary:{key}")
        cause = st.text_input("Root cause", value=current.get("root_cause", ""), key=f"incident_rv_cause:{key}")
        follow = st.text_area("Follow-ups", value=current.get("follow_ups", ""), key=f"incident_rv_follow:{key}")
        if st.button("Save review", key=f"incident_rv_save:{key}"):
            ui.run_action(lambda: incidents.review(store, user.name, key, summary, cause, follow), "Review saved.")


def _status_page(user: User) -> None:
    """The handoff's "Update status page": a notice visitors of /status read (Operator and above)."""
    with st.expander("Update the public status page (/status)"):
        text = st.text_area("Update (shown to anyone, without your name)", key="status_update_text")
        if st.button("Publish", key="status_update_publish", disabled=not user.can(incidents.actions.PERMISSION)):
            ui.run_action(lambda: statuspage.publish(context.store(), user.name, text), "Published on the status page.")


def render(user: User) -> None:
    st.title("Incidents")
    store = context.store()
    _status_page(user)
    active_only = st.toggle("Only incidents not resolved", value=False, key="incidents_active")
    found = incidents.list_incidents(store, "active" if active_only else None)
    if not found:
        st.success("No incidents. The watcher (`nightwatch watch`) opens one at SEV-1 or SEV-2.")
        return
    _listing(found)
    names = {incident.name: incident.incident_id for incident in found}
    wanted = str(st.query_params.get("incident", "") or "")
    ids = list(names.values())
    default = ids.index(int(wanted)) if wanted.isdigit() and int(wanted) in ids else 0  # ?incident=N (the page's link)
    chosen = st.selectbox("Incident", list(names), index=default, key="incident_chosen")
    incident = incidents.get_incident(store, names[chosen])
    if incident is None:
        return
    ui.SEVERITY_STYLE.get(incident.severity, st.info)(
        f"**{incident.name} {incident.severity}** ({incident.status}) — {incident.reason}"
    )
    allowed = user.can(incidents.actions.PERMISSION)
    _checklist(user, incident, allowed)
    if allowed:
        _respond(user, incident)
    else:
        st.caption("Responding to incidents needs the Operator role.")
    if incident.review and not allowed:
        st.subheader("Post-incident review")
        st.json(incident.review)
    st.subheader("Pages")
    if incident.pages:
        st.dataframe(
            pd.DataFrame(incident.pages)[["step", "after_min", "role", "person", "channel", "status", "at"]],
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No page sent yet.")
    st.subheader("Timeline")
    st.dataframe(pd.DataFrame(incident.timeline)[["at", "kind", "actor", "text"]], hide_index=True, width="stretch")
