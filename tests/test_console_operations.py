"""The console under operations: lockout and password changes, landing pages per endpoint, workers and
console faults, the console's metrics (the fixtures and helpers are tests/test_dashboard.py's)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from access import accounts
from tests import test_dashboard
from tests.test_access import PASSWORD
from tests.test_dashboard import APP, LOGIN, TITLES, goto, login, texts

console = test_dashboard.console  # the fixture: a copy of the simulated night with its people

# --- issue 15: lockout on the login page, the current password, no error details for users ---------------------


def test_the_login_page_locks_out_repeated_guesses(console):
    for _ in range(5):
        login("ops", "not the password")
    at = login("ops", PASSWORD)  # the right password, during the lockout
    assert "Refused: too many failed logins: try again in" in at.error[0].value
    assert not at.sidebar.radio


def test_changing_your_password_in_the_console_needs_the_current_one(console):
    at = goto(login("obs"), "Access")
    at.text_input(key="pw0").input("not my password")
    at.text_input(key="pw1").input("a-new-long-password")
    at.text_input(key="pw2").input("a-new-long-password")
    at.button(key="FormSubmitter:password-Change password").click().run()
    assert any("current password is wrong" in error.value for error in at.error)
    assert accounts.authenticate(console, "obs", PASSWORD) is not None  # unchanged
    at.text_input(key="pw0").input(PASSWORD)
    at.text_input(key="pw1").input("a-new-long-password")
    at.text_input(key="pw2").input("a-new-long-password")
    at.button(key="FormSubmitter:password-Change password").click().run()
    assert accounts.authenticate(console, "obs", "a-new-long-password") is not None


def test_an_unexpected_error_shows_a_friendly_line_and_logs_the_detail(console, monkeypatch, caplog):
    """The hot store unreachable: the user reads one friendly line, the traceback (with the SQL) goes to the log."""
    from dashboard.ui import FRIENDLY_ERROR  # (importing dashboard.app would run the console here)

    monkeypatch.setenv("NIGHTWATCH_DB_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_name").input("ops")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert [error.value for error in at.error] == [FRIENDLY_ERROR]
    assert "127.0.0.1" not in texts(at) and "Traceback" not in texts(at)
    assert any(record.name == "nightwatch.console" and record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    ("query", "role", "page"),
    [("alerts", "operator", "Alerts"), ("admin", "admin", "Configuration"), ("dashboard", "observer", "Monitoring")],
)
def test_the_console_opens_on_the_page_its_endpoint_names(console, query, role, page):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["page"] = query
    at.run()
    at.text_input(key="login_name").input(LOGIN[role])
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == TITLES[page]
    assert at.sidebar.radio(key="page").value == page


def test_the_admin_hostname_opens_on_the_first_page_for_a_role_without_it(console):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["page"] = "admin"
    at.run()
    at.text_input(key="login_name").input("obs")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert at.title[0].value == "Monitoring"
    assert "Configuration needs a role you do not hold" in texts(at)


def test_monitoring_shows_the_workers_a_stale_notifier_and_a_paused_intake(console):
    from datetime import timedelta

    from core.event import utcnow
    from ops import intake
    from ops.workers import record_beat
    from store.schema import heartbeats

    intake.set_paused(console, "ops", True, reason="restoring the hot store")
    record_beat(console, "notifier:host:7", "notifier", state="running", started_at=utcnow(), processed=3, errors=0)
    with console.engine.begin() as conn:
        conn.execute(
            heartbeats.update().values(beat_at=utcnow() - timedelta(minutes=10)).where(heartbeats.c.kind == "notifier")
        )
    at = goto(login("obs"), "Monitoring")
    shown = texts(at)
    assert "Intake paused" in shown and "by ops" in shown and "restoring the hot store" in shown
    assert any("Alert service down" in error.value for error in at.error)
    assert "Workers" in [header.value for header in at.subheader]
    tables = [frame.value for frame in at.dataframe]
    workers_table = next(table for table in tables if "worker" in table.columns)
    assert set(workers_table["kind"]) == {"batch", "notifier"}
    assert "STALE (running)" in set(workers_table["state"])


def test_a_page_that_fails_to_render_is_shown_and_recorded_as_a_console_fault(console, monkeypatch):
    from dashboard.views import alerts as alerts_view
    from ops.health.faults import recent_faults

    def broken(_user):
        raise KeyError("title")

    at = login("ops")
    monkeypatch.setattr(alerts_view, "render", broken)
    at.sidebar.radio(key="page").set_value("Alerts").run()
    assert not at.exception, at.exception  # the console goes on: the other pages still work
    assert any("This page failed to render (KeyError: 'title')" in error.value for error in at.error)
    (fault,) = recent_faults(console)
    assert (fault.page, fault.kind, fault.user_name) == ("Alerts", "render_error", "ops")
    goto(at, "Monitoring")  # the other pages still render


def test_logins_and_failures_are_counted_on_the_console_metrics_port(console, monkeypatch):
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    from devtools.pubsub import free_port

    def scrape(url: str) -> list:
        return [s for f in text_string_to_metric_families(requests.get(url, timeout=10).text) for s in f.samples]

    def total(samples: list, name: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    port = free_port()
    monkeypatch.setenv("NIGHTWATCH_METRICS_PORT", str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    login("ops", "not the password")  # the first run starts the metrics server
    before = scrape(url)
    login("ops", "not the password")
    login("obs", "still not it")
    login("ops")
    after = scrape(url)
    name = "nightwatch_console_logins_total"
    assert total(after, name, outcome="failure") - total(before, name, outcome="failure") == 2
    success = {"method": "local", "outcome": "success"}
    assert total(after, name, **success) - total(before, name, **success) == 1
