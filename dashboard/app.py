"""The Nightwatch operations console: `streamlit run dashboard/app.py -- --output out` (or `make dashboard`).

Nobody sees anything before logging in. The sidebar lists the pages the user's role may open; each page's
actions are checked again in access.accounts, so hiding a page or a button is never the only guard.
"""

from __future__ import annotations

import logging

import streamlit as st

from access import roles
from config.environment import environment
from core import telemetry
from dashboard import auth, context, ui
from dashboard.views import (
    access_page,
    admin,
    alerts,
    deadletters,
    incidents,
    maintenance,
    monitoring,
    objects,
    review,
    schedule,
    thresholds,
    users,
)
from ops.health.faults import RENDER_ERROR, record_fault
from ops.maintenance import active_window

log = logging.getLogger("nightwatch.console")

# Page name -> (module, the permission needed to open it; None: any logged-in user).
PAGES = {
    "Monitoring": (monitoring, "view_dashboard"),
    "Alerts": (alerts, "view_alerts"),
    "Incidents": (incidents, "view_dashboard"),
    "Review queue": (review, "view_review_queue"),
    "Objects": (objects, "view_events"),
    "Thresholds": (thresholds, "view_dashboard"),
    "Dead letters": (deadletters, "view_events"),
    "Schedule": (schedule, "view_dashboard"),
    "Configuration": (admin, "configure_system"),
    "Users & audit": (users, "manage_users"),
    "Maintenance": (maintenance, "view_dashboard"),
    "Access": (access_page, None),
}


def landing_page() -> str:
    """The page to open on: `?page=dashboard|alerts|admin` (or a page's name), else the hostname the console is
    called by (config/endpoints.yaml: the alert portal and admin have hostnames of their own), else ""."""
    endpoints = context.config().endpoints
    wanted = str(st.query_params.get("page", "") or "")
    if wanted:
        return wanted if wanted in PAGES else endpoints.landing_for_key(wanted)
    try:
        host = st.context.headers.get("Host", "") or ""
    except Exception:  # noqa: BLE001 - no request headers (a script run, a test): no hostname to go by
        host = ""
    return endpoints.landing_for_host(host)


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
    if not st.session_state.get("landed"):  # once per session: the page of the hostname or ?page= it came by
        st.session_state["landed"] = True
        if (wanted := landing_page()) in allowed:
            st.session_state["page"] = wanted
        elif wanted:
            st.session_state["landing_refused"] = wanted
    if st.session_state.get("page") not in allowed:  # e.g. the role was lowered since the last click
        st.session_state["page"] = allowed[0]
    with st.sidebar:
        st.markdown(f"**{user.name}** · {roles.ROLE_TITLES.get(user.role or '', 'no role yet')}")
        page = st.radio("Page", allowed, key="page")
        if st.button("Log out"):
            auth.logout()
            st.rerun()
    ui.show_flash()
    if refused := st.session_state.pop("landing_refused", None):
        st.info(f"{refused} needs a role you do not hold: opened {page} instead.")
    if (window := active_window(context.store())) is not None:
        st.warning(f"Maintenance in progress: {window.describe()}", icon="🛠️")
    module, _ = PAGES[page]
    try:
        module.render(user)
    except Exception as exc:  # noqa: BLE001 - a page that fails is shown as such and recorded (SEV-4), not a crash
        # (Streamlit's own rerun/stop signals are not Exceptions, so they pass through.)
        detail = f"{type(exc).__name__}: {exc}"
        try:
            record_fault(context.store(), page, RENDER_ERROR, detail, user.name)
        except Exception:  # noqa: BLE001 - the store itself may be the fault; the page still says what failed
            pass
        st.error(f"This page failed to render ({detail}). It has been recorded as a console fault (SEV-4).")


def guarded() -> None:
    """main(), with any unexpected error logged in full on the server and a friendly line for the user (Streamlit's
    own details are off too: `client.showErrorDetails = "none"` in .streamlit/config.toml and the Makefile)."""
    try:
        main()
    except Exception as exc:
        if type(exc).__module__.startswith("streamlit"):  # st.rerun / st.stop work by raising: let them through
            raise
        log.exception("console error")
        st.error(ui.FRIENDLY_ERROR)


guarded()
