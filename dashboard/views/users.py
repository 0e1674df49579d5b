"""Users and audit (Super Admin): accounts and roles, immediate revocation, the audit log and the quarterly
access review, both exportable as CSV."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from access import accounts, audit, procedures, roles
from access.accounts import User
from dashboard import context, ui

ROLE_CHOICES = [None, *roles.ROLES]


def _role_label(role: str | None) -> str:
    return roles.ROLE_TITLES.get(role or "", "no role")


def _users(user: User) -> None:
    store = context.store()
    people = accounts.list_users(store)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "user": person.name,
                    "email": person.email or "",
                    "role": person.title,
                    "active": person.active,
                    "last login": ui.when(person.last_login_at),
                }
                for person in people
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.subheader("Add a user")
    with st.form("add_user", clear_on_submit=True):
        name = st.text_input("User name", key="new_name")
        email = st.text_input("E-mail (for single sign-on; optional)", key="new_email")
        role = st.selectbox("Role", roles.ROLES, format_func=_role_label, key="new_role")
        password = st.text_input("Initial password (12+ characters; empty for SSO only)", type="password", key="new_pw")
        reason = st.text_input("Reason (e.g. the approved ticket)", key="new_reason")
        if st.form_submit_button("Add user"):
            ui.run_action(
                lambda: accounts.create_user(
                    store, user.name, name, role, password or None, email or None, reason or "added in the console"
                ),
                lambda created: f"Added {created.name} as {created.title}.",
            )
    st.subheader("Change a user")
    others = [person.name for person in people]
    target = st.selectbox("User", others, key="edit_user")
    reason = st.text_input("Reason (required)", key="edit_reason")
    columns = st.columns(3)
    new_role = columns[0].selectbox("New role", ROLE_CHOICES, format_func=_role_label, key="edit_role")
    if columns[0].button("Set role", key="set_role"):
        ui.run_action(
            lambda: accounts.set_role(store, user.name, target, new_role, reason),
            lambda changed: f"{changed.name} is now {changed.title}.",
        )
    if columns[1].button("Revoke now", type="primary", key="revoke"):
        ui.run_action(
            lambda: accounts.revoke(store, user.name, target, reason),
            lambda changed: f"Revoked {changed.name}: refused from their next click.",
        )
    if columns[2].button("Reinstate (no role)", key="reinstate"):
        ui.run_action(
            lambda: accounts.reinstate(store, user.name, target, reason),
            lambda changed: f"Reinstated {changed.name} with no role.",
        )


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


def _audit(user: User) -> None:
    store = context.store()
    try:
        counted = procedures.audit_kinds_for(store, user.name)
    except roles.PermissionDenied as exc:
        st.error(f"Refused: {exc}")
        return
    # Logins are most of the log: shown when chosen, so the changes people made are what one sees first.
    chosen = st.multiselect(
        "Kind of action",
        list(counted),
        default=[kind for kind in counted if kind != "login"],
        format_func=lambda kind: f"{kind} ({counted[kind]:,})",
        key="audit_kinds",
    )
    filters = st.columns(3)
    actor = filters[0].text_input("Actor", key="audit_actor").strip() or None
    action = filters[1].text_input("Action starts with", key="audit_action").strip() or None
    target = filters[2].text_input("Target", key="audit_target").strip() or None
    try:
        entries = procedures.audit_for(
            store, user.name, actor=actor, action=action, target=target, limit=1000, kinds=chosen
        )
    except roles.PermissionDenied as exc:
        st.error(f"Refused: {exc}")
        return
    frame = pd.DataFrame(
        [
            {
                "#": entry.audit_id,
                "at": ui.when(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "change": audit.describe_change(entry.before, entry.after),
                "note": entry.note or "",
            }
            for entry in entries
        ]
    )
    # The export keeps the exact before and after (JSON) beside the readable change.
    export = (
        frame.assign(before=[_json(entry.before) for entry in entries], after=[_json(entry.after) for entry in entries])
        if entries
        else frame
    )
    chain = procedures.audit_chain_for(store, user.name)
    if chain.intact:
        st.success(f"Chain intact: {chain.rows} entries, each hashed with the one before (`nightwatch audit verify`).")
    else:
        st.error(f"Chain broken at entry #{chain.bad_id}: {chain.problem}. Someone changed the log in the database.")
    st.caption("Append-only: there is no way to change or delete an entry, here or in the database (triggers).")
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Export CSV", export.to_csv(index=False), "nightwatch-audit.csv", "text/csv", key="audit_csv")


def _review(user: User) -> None:
    if st.button("Run the quarterly access review", key="run_review"):
        try:
            rows = procedures.access_review_for(context.store(), user.name)
        except roles.PermissionDenied as exc:
            st.error(f"Refused: {exc}")
            return
        st.session_state["access_review"] = rows
    rows = st.session_state.get("access_review")
    if rows is None:
        st.caption("Every user, role, grant history and last login; also `nightwatch users review --csv`.")
        return
    st.dataframe(pd.DataFrame(rows, columns=procedures.REVIEW_COLUMNS), hide_index=True, width="stretch")
    st.download_button(
        "Export CSV", procedures.review_csv(rows), "nightwatch-access-review.csv", "text/csv", key="review_csv"
    )


def render(user: User) -> None:
    st.title("Users and audit")
    users_tab, audit_tab, review_tab = st.tabs(["Users", "Audit log", "Access review"])
    with users_tab:
        _users(user)
    with audit_tab:
        _audit(user)
    with review_tab:
        _review(user)
