"""Access: the guide's procedure. Anyone logged in requests a role with a justification; an Admin approves as
manager; for Admin and above a Super Admin then signs off the security review. Also: change your password."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from access import accounts, procedures, roles
from access.accounts import User
from access.procedures import AccessRequest
from dashboard import context, ui


def _requests_table(requests: list[AccessRequest]) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": r.request_id,
                    "user": r.user_name,
                    "role": roles.ROLE_TITLES[r.role],
                    "status": r.status,
                    "justification": r.justification,
                    "requested": ui.when(r.requested_at),
                    "manager": r.manager or "",
                    "security review": r.security_reviewer or "",
                }
                for r in requests
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _request(user: User) -> None:
    st.subheader("Request a role")
    higher = [role for role in roles.ROLES if not user.role or not roles.at_least(user.role, role)]
    if not higher:
        st.caption("You hold the highest role.")
    else:
        with st.form("request_access", clear_on_submit=True):
            role = st.selectbox("Role", higher, format_func=roles.ROLE_TITLES.__getitem__, key="req_role")
            why = st.text_area("Justification (what you need it for)", key="req_why")
            if st.form_submit_button("Submit request"):
                ui.run_action(
                    lambda: procedures.request_access(context.store(), user.name, role, why),
                    lambda request: f"Request #{request.request_id} submitted: an Admin will review it.",
                )
    mine = procedures.list_requests(context.store(), user_name=user.name)
    if mine:
        st.markdown("**Your requests**")
        _requests_table(mine)


def _decide(user: User, status: str, title: str) -> None:
    store = context.store()
    waiting = procedures.list_requests(store, status=status)
    st.subheader(title)
    if not waiting:
        st.caption("None waiting.")
        return
    _requests_table(waiting)
    labels = {r.request_id: f"#{r.request_id} {r.user_name} → {roles.ROLE_TITLES[r.role]}" for r in waiting}
    chosen = st.selectbox("Request", list(labels), format_func=labels.__getitem__, key=f"pick:{status}")
    note = st.text_input("Note (required)", key=f"note:{status}")
    approve, reject = st.columns(2)
    if status == "pending":
        if approve.button("Approve (manager)", key="approve_request"):
            ui.run_action(
                lambda: procedures.approve_request(store, user.name, chosen, note),
                lambda r: f"Request #{r.request_id}: {r.status.replace('_', ' ')}.",
            )
        if reject.button("Reject", key="reject_request"):
            ui.run_action(
                lambda: procedures.reject_request(store, user.name, chosen, note),
                lambda r: f"Request #{r.request_id} rejected.",
            )
    else:
        if approve.button("Sign off security review", key="sign_off"):
            ui.run_action(
                lambda: procedures.security_review(store, user.name, chosen, True, note),
                lambda r: f"Request #{r.request_id}: {r.status}.",
            )
        if reject.button("Refuse", key="refuse"):
            ui.run_action(
                lambda: procedures.security_review(store, user.name, chosen, False, note),
                lambda r: f"Request #{r.request_id} refused.",
            )


def _password(user: User) -> None:
    with st.expander("Change your password"):
        with st.form("password", clear_on_submit=True):
            current = st.text_input("Current password", type="password", key="pw0")
            first = st.text_input("New password (12+ characters)", type="password", key="pw1")
            second = st.text_input("Again", type="password", key="pw2")
            if st.form_submit_button("Change password"):
                if first != second:
                    st.error("The two passwords differ.")
                else:
                    ui.run_action(
                        lambda: accounts.reset_password(context.store(), user.name, user.name, first, current),
                        "Password changed.",
                    )


def render(user: User) -> None:
    st.title("Access")
    if user.role is None:
        st.info("You have no role yet: request one below. An Admin approves it (and a Super Admin for Admin+).")
    _request(user)
    if user.can("approve_access"):
        _decide(user, "pending", "Requests awaiting manager approval")
    if user.can("security_review"):
        _decide(user, "security_review", "Requests awaiting the security review (Admin and above)")
    _password(user)
