"""Logging in: single sign-on (OIDC through `st.login`) when `.streamlit/secrets.toml` has an `[auth]` section,
and local accounts (scrypt-hashed passwords in the hot store) always. There is no other way in.

The session keeps only the user's name; the user is re-loaded from the store on every run, so a revoked user
or a changed role takes effect on the very next click. A local login also gets a signed session token
(`access.sessions`: expiry, server-side revocation) in the URL's `session` query parameter, so reloading the page
or a dropped connection keeps the user logged in; logging out revokes it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from access import accounts, sessions
from access.accounts import LoginLocked, User
from access.roles import AccessError
from core import telemetry
from dashboard import context

SESSION_USER = "nightwatch_user"
SESSION_METHOD = "nightwatch_login_method"
SESSION_TOKEN = "nightwatch_session_token"
TOKEN_PARAM = "session"


def _auth_secrets() -> Any | None:
    try:
        return st.secrets["auth"] if "auth" in st.secrets else None
    except Exception:  # noqa: BLE001 - no secrets.toml at all: single sign-on is simply not configured
        return None


def oidc_configured() -> bool:
    return _auth_secrets() is not None


def _oidc_provider() -> str | None:
    """None for a single provider set directly under [auth]; else the first [auth.NAME] section."""
    section = _auth_secrets()
    if section is None or "client_id" in section:
        return None
    names = [key for key in section if isinstance(section[key], dict) or hasattr(section[key], "keys")]
    return names[0] if names else None


def _oidc_user() -> User | None:
    """The account an OIDC identity maps to (by e-mail); a new identity gets a role-less account."""
    if not oidc_configured() or not st.user.is_logged_in:
        return None
    email = st.user.get("email")
    if not email:
        st.error("Your identity provider sent no e-mail address: the console cannot map you to an account.")
        return None
    store = context.store()
    user = accounts.user_for_email(store, email) or accounts.register_identity(store, email)
    if st.session_state.get(SESSION_USER) != user.name:
        accounts.record_login(store, user.name, "oidc")
        telemetry.CONSOLE_LOGINS.labels("oidc", "success").inc()
        st.session_state[SESSION_USER] = user.name
        st.session_state[SESSION_METHOD] = "oidc"
    return user


def _token_user() -> str | None:
    """The user named by the session token in the URL (a reload or a new connection), if it is still valid."""
    token = st.query_params.get(TOKEN_PARAM)
    if not token:
        return None
    name = sessions.verify(context.store(), token)
    if name is None:
        st.query_params.pop(TOKEN_PARAM, None)
        st.session_state["nightwatch_notice"] = "Your session has expired or was ended: please log in again."
        return None
    st.session_state[SESSION_USER] = name
    st.session_state[SESSION_METHOD] = "local"
    st.session_state[SESSION_TOKEN] = token
    return name


def current_user() -> User | None:
    """The logged-in user, freshly loaded; None (and the session cleared) if revoked or unknown."""
    oidc = _oidc_user()
    if oidc is not None:
        name = oidc.name
    else:
        name = st.session_state.get(SESSION_USER) or _token_user()
        token = st.session_state.get(SESSION_TOKEN)
        if name and token and sessions.verify(context.store(), token) is None:  # revoked or expired meanwhile
            logout(silent=True)
            st.session_state["nightwatch_notice"] = "Your session has expired or was ended: please log in again."
            return None
    if not name:
        return None
    user = accounts.get_user(context.store(), name)
    if user is None or not user.active:
        logout(silent=True)
        st.session_state["nightwatch_notice"] = "Your access has been revoked: you have been logged out."
        return None
    return user


def logout(silent: bool = False) -> None:
    method = st.session_state.pop(SESSION_METHOD, None)
    name = st.session_state.pop(SESSION_USER, None)
    if st.session_state.pop(SESSION_TOKEN, None) and name and not silent:
        sessions.revoke_sessions(context.store(), name)  # every token this user holds is refused from now on
    st.query_params.pop(TOKEN_PARAM, None)
    if method == "oidc" and not silent:
        st.logout()


def _client_address() -> str | None:
    """The browser's address as Streamlit sees it (behind a proxy: the proxy's), when known."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - not in a browser session (tests, bare mode)
        return None
    return address if isinstance(address, str) and address else None


def login_page() -> None:
    st.title("Nightwatch operations console")
    notice = st.session_state.pop("nightwatch_notice", None)
    if notice:
        st.warning(notice)
    if oidc_configured():
        st.subheader("Single sign-on")
        if st.button("Log in with single sign-on", type="primary"):
            provider = _oidc_provider()
            st.login(provider) if provider else st.login()
        st.divider()
    st.subheader("Local account")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            # Throttled per account and per client address (access/throttle.py), fields checked before any query.
            user = accounts.authenticate(context.store(), name, password, client=_client_address())
        except LoginLocked as exc:
            telemetry.CONSOLE_LOGINS.labels("local", "locked").inc()
            st.error(f"Refused: {exc}.")
            return
        except AccessError as exc:
            st.error(str(exc))
            return
        telemetry.CONSOLE_LOGINS.labels("local", "failure" if user is None else "success").inc()
        if user is None:
            st.error("Wrong user name or password, or the account has been revoked.")
        else:
            token = sessions.issue(context.store(), user.name)
            st.session_state[SESSION_USER] = user.name
            st.session_state[SESSION_METHOD] = "local"
            st.session_state[SESSION_TOKEN] = token
            st.query_params[TOKEN_PARAM] = token  # a reload brings it back (see _token_user)
            st.rerun()
    st.caption(
        "No account yet? A Super Admin creates one (`nightwatch users add NAME --role observer --as ADMIN`), "
        "or sign in with single sign-on and request a role on the Access page."
    )
