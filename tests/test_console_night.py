"""The console on a busy night (issue 18), through Streamlit's AppTest: sessions that survive a reload, responding
to many alerts at once, readable charts and figures. Shares tests/test_dashboard.py's store and helpers."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from access import accounts, audit
from access.roles import PermissionDenied
from ops import responses
from tests.test_dashboard import APP, PAGES, alert_status, console, goto, login  # noqa: F401 - console: fixture


def test_charts_are_24_hour_utc_with_gaps_and_numbers_carry_units():
    from datetime import datetime, timedelta, timezone

    from dashboard import ui
    from dashboard.views.monitoring import formatted, timeline

    start = datetime(2026, 11, 27, 20, 2, tzinfo=timezone.utc)  # 20:02 UTC, once drawn as "08:02"
    minutes = [0, 1, 2, 6, 7]  # nothing arrived from 20:05 to 20:07
    series = [{"time": start + timedelta(minutes=m), "source": "ztf", "value": 10.0 + m} for m in minutes]
    long = timeline(series)
    assert list(long["at (UTC)"])[:3] == ["2026-11-27T20:02Z", "2026-11-27T20:03Z", "2026-11-27T20:04Z"]
    assert len(long) == 8 and long["value"].isna().sum() == 3  # the gap stays a gap (no line drawn across)
    assert formatted("Error rate", 0.0091) == "0.91%" and formatted("Event rate", 266.26) == "266.3/min"
    assert formatted("Processing latency", 5.98e-05) == "0.00 s" and formatted("Queue depth", None) == "–"
    assert ui.iso(start) == "2026-11-27T20:02:00Z" == ui.when(start)


def test_bulk_acknowledge_with_one_note_audits_each_alert(console):  # noqa: F811
    at = goto(login("ops"), "Alerts")
    frame = at.dataframe[0].value
    chosen = list(frame[frame["status"] == "open"]["alert"][:3])
    assert len(chosen) == 3
    # What clicking three rows of the table leaves in the session (AppTest cannot click a table row).
    at.session_state["alerts_selected"] = chosen
    at.run()
    assert "Respond to 3 selected alerts" in [header.value for header in at.subheader]
    at.button(key="bulk:acknowledge").click().run()
    assert "needs a note" in at.error[0].value
    assert {alert_status(console, alert_id) for alert_id in chosen} == {"open"}
    at.text_area(key="alerts_bulk_note").input("storm from one Rubin visit: science team paged once")
    at.button(key="bulk:acknowledge").click().run()
    assert not at.exception
    assert "3 alert(s) acknowledged with one note, each audited." in [success.value for success in at.success]
    assert {alert_status(console, alert_id) for alert_id in chosen} == {"acknowledged"}
    entries = audit.audit_entries(console, action="alert.acknowledge")
    assert sorted(entry.target for entry in entries) == sorted(chosen)
    assert {entry.note for entry in entries} == {"storm from one Rubin visit: science team paged once"}
    assert "Respond to 3 selected alerts" not in [header.value for header in at.subheader]  # selection cleared
    # Resolving many skips one already resolved, and says so.
    responses.alert_action(console, "ops", chosen[0], "resolve", "done")
    outcome = responses.alert_actions_bulk(console, "ops", chosen, "resolve", "all followed up")
    assert outcome[chosen[0]].startswith("refused") and [outcome[a] for a in chosen[1:]] == ["resolved"] * 2
    with pytest.raises(PermissionDenied):
        responses.alert_actions_bulk(console, "obs", chosen, "acknowledge", "forged")


def reload(token: str) -> AppTest:
    """A browser reload: a new session (nothing in st.session_state) with the URL's query parameters."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["session"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def test_reload_keeps_the_session_until_logout_or_revocation(console):  # noqa: F811
    from access import sessions

    at = login("ops")
    token = at.query_params["session"]
    token = token[0] if isinstance(token, list) else token
    assert sessions.verify(console, token) == "ops"
    again = reload(token)
    assert again.sidebar.radio(key="page").options == PAGES["operator"]  # still logged in after the reload
    # A forged or expired token is refused.
    body, signature = token.split(".")
    assert sessions.verify(console, f"{body}.{signature[::-1]}") is None
    assert sessions.verify(console, token, now=__import__("time").time() + 13 * 3600) is None
    assert not reload(token[:-2] + "xx").sidebar.radio
    # Logging out revokes the token on the server: the same URL no longer logs in.
    again.sidebar.button[0].click().run()
    assert sessions.verify(console, token) is None
    refused = reload(token)
    assert not refused.sidebar.radio and "please log in again" in refused.warning[0].value
    # A revoked user stays refused whatever token they hold.
    fresh = login("ops").query_params["session"]
    fresh = fresh[0] if isinstance(fresh, list) else fresh
    accounts.revoke(console, "root", "ops", "terminated")
    assert not reload(fresh).sidebar.radio
