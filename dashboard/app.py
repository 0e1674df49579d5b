"""The Nightwatch operations console: `streamlit run dashboard/app.py -- --output out` (or `make dashboard`).

Nobody sees anything before logging in. The sidebar lists the pages the user's role may open; each page's
actions are checked again in access.accounts, so hiding a page or a button is never the only guard.
"""

from __future__ import annotations

import streamlit as st

from access import roles
from config.environment import environment
from core import telemetry
from dashboard import auth, context, ui
from dashboard.views import access_page, admin, alerts, monitoring, review, thresholds, users
from ops.maintenance import active_window

# Page name -> (module, the permission needed to open it; None: any logged-in user).
PAGES = {
    "Monitoring": (monitoring, "view_dashboard"),
    "Alerts": (alerts, "view_alerts"),
    "Review queue": (review, "view_review_queue"),
    "Thresholds": (thresholds, "view_dashboard"),
    "Configuration": (admin, "configure_system"),
    "Users & audit": (users, "manage_users"),
    "Access": (access_page, None),
}


def main() -> None:
    st.set_page_config(page_title="Nightwatch console", page_icon="🔭", layout="wide")
    # Prometheus metrics (logins) on $NIGHTWATCH_METRICS_PORT: once per process, not per rerun.
    env = environment()
    telemetry.serve(env.metrics_port, env.metrics_addr)
    user = auth.current_user()
    if user is None:
        auth.login_page()
        return
    allowed = [name for name, (_, permission) in PAGES.items() if permission is None or user.can(permission)]
    if st.session_state.get("page") not in allowed:  # e.g. the role was lowered since the last click
        st.session_state["page"] = allowed[0]
    with st.sidebar:
        st.markdown(f"**{user.name}** · {roles.ROLE_TITLES.get(user.role or '', 'no role yet')}")
        page = st.radio("Page", allowed, key="page")
        if st.button("Log out"):
            auth.logout()
            st.rerun()
    ui.show_flash()
    if (window := active_window(context.store())) is not None:
        st.warning(f"Maintenance in progress: {window.describe()}", icon="🛠️")
    module, _ = PAGES[page]
    module.render(user)


main()
