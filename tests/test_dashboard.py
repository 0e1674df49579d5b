"""The console through Streamlit's AppTest: every page for every role, each action done by a role that may and
tried by one that may not, the audit log after each change, and a revoked user refused on the next click.
The store behind it is filled by a real pipeline run (tests/test_access.py's simulated night)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from access import accounts, audit, procedures
from access.roles import PermissionDenied
from ops import responses, sysconfig, tuning
from store.hot import HotStore
from store.schema import alerts, events, review_queue
from store.thresholds import ThresholdStore
from tests.conftest import copy_night
from tests.test_access import PASSWORD, with_people

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = {
    "observer": ["Monitoring", "Alerts", "Review queue", "Thresholds", "Access"],
    "operator": ["Monitoring", "Alerts", "Review queue", "Thresholds", "Access"],
    "admin": ["Monitoring", "Alerts", "Review queue", "Thresholds", "Configuration", "Access"],
    "super_admin": ["Monitoring", "Alerts", "Review queue", "Thresholds", "Configuration", "Users & audit", "Access"],
}
TITLES = {
    "Monitoring": "Monitoring",
    "Alerts": "Alert portal",
    "Review queue": "Review queue",
    "Thresholds": "Thresholds",
    "Configuration": "System configuration",
    "Users & audit": "Users and audit",
    "Access": "Access",
}
LOGIN = {"observer": "obs", "operator": "ops", "admin": "adm", "super_admin": "root"}


@pytest.fixture
def console(night_template, tmp_path, monkeypatch) -> HotStore:  # noqa: F811
    folder = copy_night(night_template, tmp_path / "out")
    monkeypatch.setenv("NIGHTWATCH_OUTPUT", str(folder))
    monkeypatch.delenv("NIGHTWATCH_DB_URL", raising=False)
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    yield with_people(store)
    store.close()


def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def login(name: str, password: str = PASSWORD) -> AppTest:
    at = app()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    assert at.title[0].value == TITLES[page]
    return at


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success, *at.metric]
    return "\n".join(str(getattr(element, "value", "")) + str(getattr(element, "label", "")) for element in parts)


def alert_status(store: HotStore, alert_id: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(alerts.c.status).where(alerts.c.alert_id == alert_id)).scalar()


def test_no_way_in_without_logging_in(console):
    at = app()
    assert at.title[0].value == "Nightwatch operations console"
    assert not at.sidebar.radio and "Monitoring" not in [title.value for title in at.title]
    at = login("ops", "not the password")
    assert "Wrong user name or password" in at.error[0].value
    assert not at.sidebar.radio


@pytest.mark.parametrize("role", list(PAGES))
def test_every_page_for_every_role(console, role):
    at = login(LOGIN[role])
    assert at.sidebar.radio(key="page").options == PAGES[role]
    for page in PAGES[role]:
        goto(at, page)


def test_monitoring_shows_the_five_panels_with_figures_and_severity(console):
    at = goto(login("obs"), "Monitoring")
    shown = texts(at)
    for panel in ("Event rate", "Processing latency", "Queue depth", "Error rate", "Alert volume"):
        assert f"#### {panel}" in shown
    values = {metric.label: metric.value for metric in at.metric}
    assert values["Processing latency"].endswith("s (p50)") and values["Error rate"].endswith(")")
    assert "alerts (night" in values["Alert volume"]
    assert any(sev in shown for sev in ("SEV-1", "SEV-2", "SEV-3", "SEV-4", "No incident"))
    assert "Action if abnormal: Check data sources" in [expander.label for expander in at.expander]
    assert "Runbook: High Queue Depth" in shown
    # The run's agents wrote their windows: latency against budget, timeouts and breaker state per agent.
    assert "Runbook: Agent Timeout" in [expander.label for expander in at.expander]
    agents = next(frame.value for frame in at.dataframe if "budget ms" in frame.value.columns)
    assert len(agents) > 0 and set(agents["breaker"]) <= {"closed", "open", "half_open"}


def test_observer_is_refused_acknowledging_an_alert(console):
    at = goto(login("obs"), "Alerts")
    alert_id = at.selectbox(key="alert_chosen").value
    button = at.button(key=f"acknowledge:{alert_id}")
    assert button.disabled  # (AppTest, like a browser, cannot click a disabled button)
    assert "needs the Operator role" in texts(at)
    # A forged request reaches the same server-side check the button calls, and is refused.
    with pytest.raises(PermissionDenied, match="needs the Operator role"):
        responses.alert_action(console, "obs", alert_id, "acknowledge", "forged")
    assert alert_status(console, alert_id) == "open"
    assert not audit.audit_entries(console, action="alert.")


def test_operator_acknowledges_an_alert_and_it_is_audited(console):
    at = goto(login("ops"), "Alerts")
    assert "OVERDUE" in texts(at) or at.dataframe  # timers are shown; the run's alerts may be fresh
    alert_id = at.selectbox(key="alert_chosen").value
    at.button(key=f"acknowledge:{alert_id}").click().run()
    assert "needs a note" in at.error[0].value and alert_status(console, alert_id) == "open"
    at.text_area(key=f"note:{alert_id}").input("paged the science team")
    at.button(key=f"acknowledge:{alert_id}").click().run()
    assert not at.exception
    assert "Alert acknowledged: now acknowledged." in [success.value for success in at.success]
    assert alert_status(console, alert_id) == "acknowledged"
    entry = audit.audit_entries(console, action="alert.")[0]
    assert (entry.actor, entry.target, entry.before, entry.after, entry.note) == (
        "ops",
        alert_id,
        {"status": "open"},
        {"status": "acknowledged"},
        "paged the science team",
    )
    frame = at.dataframe[0].value
    assert "response timer" in frame.columns


def test_alert_detail_shows_event_lineage_enrichments_and_cutouts(console):
    with console.engine.connect() as conn:
        ztf_alert = conn.execute(
            sa.select(alerts.c.alert_id).where(alerts.c.event_id.startswith("ztf:")).order_by(alerts.c.alert_id)
        ).scalar()
        payload = json.loads(
            conn.execute(sa.select(events.c.payload).where(events.c.event_id == ztf_alert.split(":", 1)[1])).scalar()
        )
    payload["enrichments"] = {
        "crossmatch": {"status": "ok", "latency_ms": 12.5, "data": {"nearest_star_arcsec": 40.1}},
        "history": {"status": "timeout", "latency_ms": 500.0, "reason": "over budget"},
    }
    with console.engine.begin() as conn:
        conn.execute(
            events.update().where(events.c.event_id == payload["event_id"]).values(payload=json.dumps(payload))
        )
    at = goto(login("obs"), "Alerts")
    at.selectbox(key="alert_chosen").set_value(ztf_alert).run()
    assert len(at.image) == 3  # science, template, difference stamps from the archived packet
    frames = [frame.value for frame in at.dataframe]
    lineage = next(frame for frame in frames if list(frame.columns) == ["step", "value"])
    assert "rules_version" in set(lineage["step"]) and "decided_by" in set(lineage["step"])
    enrichments = next(frame for frame in frames if "agent" in frame.columns and "latency ms" in frame.columns)
    assert dict(zip(enrichments["agent"], enrichments["status"], strict=True)) == {
        "crossmatch": "ok",
        "history": "timeout",
    }
    assert "No cutouts" not in texts(at)


def test_revoked_operator_is_refused_on_the_next_click(console):
    at = goto(login("ops"), "Alerts")
    alert_id = at.selectbox(key="alert_chosen").value
    at.text_area(key=f"note:{alert_id}").input("on it")
    accounts.revoke(console, "root", "ops", "terminated")  # in another session, by a Super Admin
    at.button(key=f"acknowledge:{alert_id}").click().run()
    assert alert_status(console, alert_id) == "open"
    assert at.title[0].value == "Nightwatch operations console"
    assert "revoked" in at.warning[0].value


def test_review_queue_promote_is_recorded_and_archived(console):
    at = goto(login("ops"), "Review queue")
    event_id = at.selectbox(key="review_chosen").value
    at.text_area(key=f"review_note:{event_id}").input("real transient, worth a spectrum")
    at.button(key=f"promote:{event_id}").click().run()
    assert any("Decision recorded: promote (promoted)" in s.value for s in at.success)
    with console.engine.connect() as conn:
        assert conn.execute(sa.select(review_queue.c.status).where(review_queue.c.event_id == event_id)).scalar() == (
            "promoted"
        )
    archived = list(Path(console.url.removeprefix("sqlite:///")).parent.glob("archive/decisions/night=*/*.avro"))
    assert len(archived) == 1
    import fastavro

    with archived[0].open("rb") as handle:
        (record,) = list(fastavro.reader(handle))
    assert (record["event_id"], record["decision"], record["actor"]) == (event_id, "promote", "ops")
    assert audit.audit_entries(console, action="review.")[0].actor == "ops"

    observer = goto(login("obs"), "Review queue")
    observer.multiselect(key="review_statuses").set_value(["pending", "promoted"]).run()
    observer.selectbox(key="review_chosen").set_value(event_id).run()
    assert observer.button(key=f"reject:{event_id}").disabled
    with pytest.raises(PermissionDenied):
        responses.decide_review(console, "obs", event_id, "reject", "forged")


def test_thresholds_preview_then_publish_as_operator(console):
    at = goto(login("ops"), "Thresholds")
    at.text_input(key="th_val").input("0.999").run()
    at.button(key="th_preview").click().run()
    preview = next(m.value for m in at.markdown if m.value.startswith("**Preview over the"))
    changed = int(preview.split(": ")[1].split(" ")[0])
    assert changed > 0  # nearly every ZTF event fails rb >= 0.999
    at.text_input(key="th_note").input("testing a stricter real/bogus cut")
    at.button(key="th_publish").click().run()
    assert any("Published version 1" in s.value for s in at.success)
    latest = ThresholdStore(console).latest("filters")
    assert latest.cuts_for("ztf")[0].value == 0.999 and latest.version.endswith("+live.1")
    assert audit.audit_entries(console, action="thresholds.")[0].after["ztf"][0]["value"] == 0.999

    invalid = goto(login("ops"), "Thresholds")
    invalid.text_input(key="th_val").input("high").run()
    assert "Invalid" in invalid.error[0].value

    observer = goto(login("obs"), "Thresholds")
    assert observer.button(key="th_publish").disabled
    assert "Adjusting thresholds needs the Operator role." in texts(observer)
    with pytest.raises(PermissionDenied):
        tuning.publish_thresholds(console, "obs", latest, latest, "forged")
    assert ThresholdStore(console).latest("filters").version.endswith("+live.1")


def test_configuration_saved_by_admin_versioned_and_audited(console):
    at = goto(login("adm"), "Configuration")
    at.selectbox(key="cfg_kind").set_value("sources").run()
    text = at.text_area(key="cfg_text:sources").value
    assert "expected_rate_per_min: 700" in text
    at.text_area(key="cfg_text:sources").input(text.replace("expected_rate_per_min: 700", "expected_rate_per_min: 650"))
    at.text_input(key="cfg_note:sources").input("ZTF rate after the camera upgrade")
    at.button(key="cfg_save").click().run()
    assert any("Saved sources version 1" in s.value for s in at.success)
    assert sysconfig.current(console, "sources").data["sources"]["ztf"]["expected_rate_per_min"] == 650
    entry = audit.audit_entries(console, action="config.")[0]
    assert entry.actor == "adm" and entry.before["sources"]["ztf"]["expected_rate_per_min"] == 700

    at.text_area(key="cfg_text:sources").input(text.replace("expected_rate_per_min: 700", "expected_rate_per_min: -1"))
    at.button(key="cfg_validate").click().run()
    assert "expected_rate_per_min" in at.error[0].value


def test_super_admin_manages_users_and_reads_the_audit_log(console):
    at = goto(login("root"), "Users & audit")
    at.text_input(key="new_name").input("nina")
    at.selectbox(key="new_role").set_value("operator")
    at.text_input(key="new_pw").input("nina-first-password")
    at.text_input(key="new_reason").input("ticket 7")
    at.button(key="FormSubmitter:add_user-Add user").click().run()
    assert any("Added nina as Operator" in s.value for s in at.success)
    at.selectbox(key="edit_user").set_value("obs")
    at.text_input(key="edit_reason").input("left the project")
    at.button(key="revoke").click().run()
    assert not accounts.get_user(console, "obs").active
    audit = at.dataframe[1].value
    assert {"user.create", "user.revoke", "login"} <= set(audit["action"])
    assert any(s.value.startswith("Chain intact:") for s in at.success)  # the hash chain, checked on the page
    at.button(key="run_review").click().run()
    review = at.dataframe[2].value
    assert set(review["user"]) == {"obs", "ops", "adm", "root", "nina"}
    assert at.get("download_button")


def test_access_request_approved_by_an_admin_in_the_console(console):
    at = goto(login("obs"), "Access")
    at.selectbox(key="req_role").set_value("operator")
    at.text_area(key="req_why").input("covering the night shifts in October")
    at.button(key="FormSubmitter:request_access-Submit request").click().run()
    assert any("submitted" in s.value for s in at.success)
    (request,) = procedures.list_requests(console, status="pending")

    admin = goto(login("adm"), "Access")
    admin.text_input(key="note:pending").input("manager: agreed")
    admin.button(key="approve_request").click().run()
    assert accounts.get_user(console, "obs").role == "operator"
    assert procedures.get_request(console, request.request_id).status == "granted"


def test_single_sign_on_maps_the_email_to_a_user(console):
    accounts.create_user(console, "root", "sso-op", "operator", email="op@facility.org")
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "nightwatch",
        "client_secret": "s",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    }
    at.user = {"is_logged_in": True, "email": "OP@facility.org", "name": "Op"}
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="page").options == PAGES["operator"]
    assert accounts.get_user(console, "sso-op").last_login_at is not None

    stranger = AppTest.from_file(APP, default_timeout=60)
    stranger.secrets["auth"] = at.secrets["auth"]
    stranger.user = {"is_logged_in": True, "email": "new@facility.org"}
    stranger.run()
    assert stranger.sidebar.radio(key="page").options == ["Access"]
    assert accounts.user_for_email(console, "new@facility.org").role is None


def test_login_page_offers_single_sign_on_when_configured(console):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32}
    at.user = {"is_logged_in": False}
    at.run()
    assert "Log in with single sign-on" in [button.label for button in at.button]


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
