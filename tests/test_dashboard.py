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
# Every role sees these.
VIEWS = ["Monitoring", "Alerts", "Incidents", "Review queue", "Objects", "Thresholds", "Dead letters", "Schedule"]
PAGES = {
    "observer": [*VIEWS, "Maintenance", "Access"],
    "operator": [*VIEWS, "Maintenance", "Access"],
    "admin": [*VIEWS, "Configuration", "Maintenance", "Access"],
    "super_admin": [*VIEWS, "Configuration", "Users & audit", "Maintenance", "Access"],
}
TITLES = {
    "Monitoring": "Monitoring",
    "Alerts": "Alert portal",
    "Incidents": "Incidents",
    "Review queue": "Review queue",
    "Objects": "Objects",
    "Thresholds": "Thresholds",
    "Dead letters": "Dead letters",
    "Schedule": "Schedule",
    "Configuration": "System configuration",
    "Users & audit": "Users and audit",
    "Maintenance": "Maintenance",
    "Access": "Access",
}
LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
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
    per_source = [frame.value for frame in at.dataframe if list(frame.value.columns) == ["source", "value", "status"]]
    cells = {cell for frame in per_source for cell in frame["value"]}
    assert any(cell.endswith("/min") for cell in cells) and any(cell.endswith("%") for cell in cells)
    assert {cell for frame in per_source for cell in frame["status"]} <= {"normal", "near limit", "abnormal", "n/a", ""}
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


def store_new_critical(store: HotStore, suffix: str = "new") -> str:
    """A new CRITICAL alert as a run would store it: a copy of a stored event under a fresh id, and its alert."""
    from core.event import utcnow

    with store.engine.begin() as conn:
        row = dict(conn.execute(sa.select(events).where(events.c.event_id.startswith("gcn:")).limit(1)).one()._mapping)
        event_id = f"{row['event_id']}:{suffix}"
        conn.execute(events.insert().values({**row, "event_id": event_id}))
        conn.execute(
            alerts.insert().values(
                alert_id=f"alert:{event_id}",
                event_id=event_id,
                level="CRITICAL",
                status="open",
                score=0.97,
                title="gcn grb: a new CRITICAL while the portal is open",
                dedup_key=f"alert:{event_id}",
                injected=False,
                created_at=utcnow(),
            )
        )
    return f"alert:{event_id}"


def test_portal_shows_a_new_critical_on_its_next_refresh(console):
    at = goto(login("ops"), "Alerts")
    before = {metric.label: int(metric.value) for metric in at.metric if metric.label in LEVELS}
    assert "New CRITICAL" not in texts(at)
    alert_id = store_new_critical(console)
    at.run()  # what the portal's timer does (st.fragment(run_every=...)): re-read the store, redraw
    after = {metric.label: int(metric.value) for metric in at.metric if metric.label in LEVELS}
    assert after["CRITICAL"] == before["CRITICAL"] + 1
    assert "New CRITICAL alert" in texts(at) and "while the portal is open" in texts(at)
    assert alert_id in set(at.dataframe[0].value["alert"])
    at.button(key="critical_seen").click().run()
    assert "New CRITICAL alert" not in texts(at)
    at.toggle(key="alert_sound").set_value(True).run()
    store_new_critical(console, "second")
    at.run()
    assert "New CRITICAL alert" in texts(at)


def test_portal_sorts_by_urgency_counts_each_level_once_and_resets_after_acting(console):
    from ops.levels import level_counts

    at = goto(login("ops"), "Alerts")
    frame = at.dataframe[0].value
    waiting = frame[frame["status"] == "open"]
    # CRITICAL pinned on top, then the overdue, then the rest by deadline.
    critical = list(waiting["level"] == "CRITICAL")
    assert critical == sorted(critical, reverse=True)
    rest = waiting[waiting["level"] != "CRITICAL"]
    assert list(rest["overdue"]) == sorted(rest["overdue"], reverse=True)
    # One count of each level: MEDIUM is the review queue's pending items, as ops.levels (and the API) says.
    counts = level_counts(console)
    shown = {metric.label: int(metric.value.replace(",", "")) for metric in at.metric if metric.label in LEVELS}
    assert shown == {level: count.waiting for level, count in counts.items()}
    with console.engine.connect() as conn:
        pending = conn.execute(
            sa.select(sa.func.count()).where(review_queue.c.status == "pending", review_queue.c.injected.is_(False))
        ).scalar()
    assert shown["MEDIUM"] == pending > 0
    # After acknowledging, the note box is empty and the picker is back on the most urgent waiting alert.
    first = at.selectbox(key="alert_chosen").value
    at.text_area(key=f"note:{first}").input("paged the science team")
    at.button(key=f"acknowledge:{first}").click().run()
    assert alert_status(console, first) == "acknowledged"
    assert at.selectbox(key="alert_chosen").value != first
    assert not at.text_area(key=f"note:{at.selectbox(key='alert_chosen').value}").value
    at.selectbox(key="alert_chosen").set_value(first).run()
    assert not at.text_area(key=f"note:{first}").value  # an immediate Escalate cannot reuse the old note
    at.button(key=f"escalate:{first}").click().run()
    assert "needs a note" in at.error[0].value and alert_status(console, first) == "acknowledged"


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
    enrichments = next(frame for frame in frames if "agent" in frame.columns and "latency" in frame.columns)
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
    # Revocation ends the user's sessions at once too (the old role's grants): back to the login page.
    assert "session has expired or was ended" in at.warning[0].value


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
    entry = audit.audit_entries(console, action="review.")[0]
    assert entry.actor == "ops" and entry.after == {"status": "promoted", "alert": f"alert:{event_id}"}
    # The promotion raised the event to a HIGH alert (SLA timer in the portal), with who and why in the lineage.
    with console.engine.connect() as conn:
        alert = conn.execute(sa.select(alerts).where(alerts.c.event_id == event_id)).one()
        event = conn.execute(sa.select(events).where(events.c.event_id == event_id)).one()
    assert (alert.level, alert.status, event.event_class, event.alert_level) == ("HIGH", "open", "significant", "HIGH")
    lineage = json.loads(event.payload)["lineage"]
    assert lineage["promoted_by"] == "ops" and lineage["promoted_because"] == "real transient, worth a spectrum"
    assert lineage["raised_from"] == "interesting" and lineage["review"] == "promoted"
    portal = goto(login("ops"), "Alerts")
    assert alert.alert_id in set(portal.dataframe[0].value["alert"])

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
    assert {"user.create", "user.revoke"} <= set(audit["action"])
    assert "login" not in set(audit["action"])  # logins are most of the log: shown when chosen
    kinds = at.multiselect(key="audit_kinds")
    kinds.set_value([*kinds.value, "login"]).run()
    assert "login" in set(at.dataframe[1].value["action"])
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
