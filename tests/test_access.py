"""Users, passwords, access procedures, the append-only audit log and operators' actions (access/accounts.py),
on a hot store filled by a real pipeline run. Every action is also tried with a role that may not do it."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from access import accounts, audit, passwords, procedures
from access.roles import AccessError, PermissionDenied
from config.settings import load_config
from ops import responses, sysconfig, tuning
from store.hot import HotStore
from store.schema import alerts, audit_log, events, review_queue, role_grants, users
from store.thresholds import ThresholdStore, with_cut_value
from tests.conftest import copy_night

PASSWORD = "a-long-test-password"
PEOPLE = {"obs": "observer", "ops": "operator", "adm": "admin", "root": "super_admin"}


def grant_by_procedure(store: HotStore, name: str, role: str, manager: str, reviewer: str) -> None:
    """Admin and above, the only way there is: the user asks, a manager approves, a Super Admin reviews."""
    request = procedures.request_access(store, name, role, f"needs {role} for the tests of the procedure")
    procedures.approve_request(store, manager, request.request_id, "manager ok")
    procedures.security_review(store, reviewer, request.request_id, True, "reviewed")


def with_people(store: HotStore) -> HotStore:
    assert accounts.bootstrap(store, "root", PASSWORD) == PASSWORD
    for name, role in PEOPLE.items():
        if name != "root":
            accounts.create_user(store, "root", name, "operator" if role == "admin" else role, PASSWORD)
    grant_by_procedure(store, "adm", "admin", "root", "root")  # the sole Super Admin may review its own approval
    return store


@pytest.fixture
def night(night_template, tmp_path) -> HotStore:
    folder = copy_night(night_template, tmp_path / "out")
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    yield with_people(store)
    store.close()


def audit_rows(store: HotStore, action: str) -> list[audit.AuditEntry]:
    return audit.audit_entries(store, action=action)


def first_alert(store: HotStore, level: str | None = None) -> str:
    query = sa.select(alerts.c.alert_id).order_by(alerts.c.alert_id)
    if level:
        query = query.where(alerts.c.level == level)
    with store.engine.connect() as conn:
        return conn.execute(query).scalars().first()


# --- passwords ---------------------------------------------------------------------------------------------


def test_passwords_are_salted_scrypt_and_checked():
    first, second = passwords.hash_password("correct horse battery"), passwords.hash_password("correct horse battery")
    assert first != second and first.startswith("scrypt$")
    assert "correct horse" not in first
    assert passwords.check_password("correct horse battery", first)
    assert not passwords.check_password("correct horse batterz", first)
    assert not passwords.check_password("x", None) and not passwords.check_password("x", "md5$abc")


def test_bootstrap_creates_one_super_admin_and_no_default_password(store):
    generated = accounts.bootstrap(store)
    assert generated and len(generated) >= 16
    assert accounts.authenticate(store, "admin", generated).role == "super_admin"
    assert accounts.bootstrap(store) is None  # one exists: nothing happens
    other = HotStore(store.url.replace("nightwatch.db", "other.db"))
    other.ensure_schema()
    assert accounts.bootstrap(other) != generated  # generated afresh, never a fixed default
    other.close()


def test_login_checks_password_and_records_last_login(night):
    assert accounts.authenticate(night, "ops", "wrong password!") is None
    assert accounts.authenticate(night, "nobody", PASSWORD) is None
    user = accounts.authenticate(night, "ops", PASSWORD)
    assert user.role == "operator" and user.last_login_at is not None
    assert [entry.target for entry in audit_rows(night, "login.failed")] == ["nobody", "ops"]


def test_short_passwords_and_bad_names_are_refused(night):
    with pytest.raises(AccessError, match="12 characters"):
        accounts.create_user(night, "root", "newbie", "observer", "short")
    with pytest.raises(AccessError, match="invalid user name"):
        accounts.create_user(night, "root", "bad name; drop", "observer", PASSWORD)


# --- roles enforced on every action ----------------------------------------------------------------------------


def test_only_a_super_admin_manages_users(night):
    for actor in ("obs", "ops", "adm"):
        with pytest.raises(PermissionDenied, match="Super Admin"):
            accounts.create_user(night, actor, "intruder", "super_admin", PASSWORD)
        with pytest.raises(PermissionDenied):
            accounts.revoke(night, actor, "obs", "no")
    assert accounts.get_user(night, "intruder") is None
    created = accounts.create_user(night, "root", "newbie", "observer", PASSWORD, reason="ticket 42")
    assert created.role == "observer"
    entry = audit_rows(night, "user.create")[0]
    assert (entry.actor, entry.target, entry.before) == ("root", "newbie", None)
    assert entry.after == {"name": "newbie", "email": None, "role": "observer", "active": True}
    assert "hash" not in json.dumps(entry.after)


def test_revocation_takes_effect_on_the_next_action(night):
    alert_id = first_alert(night)
    assert responses.alert_action(night, "ops", alert_id, "acknowledge", "looking") == "acknowledged"
    accounts.revoke(night, "root", "ops", "left the facility")
    with pytest.raises(PermissionDenied, match="revoked"):
        responses.alert_action(night, "ops", alert_id, "resolve", "done")
    assert accounts.authenticate(night, "ops", PASSWORD) is None
    entry = audit_rows(night, "user.revoke")[0]
    assert entry.before["active"] is True and entry.after == {
        "name": "ops",
        "email": None,
        "role": None,
        "active": False,
    }


def test_a_role_change_applies_at_once(night):
    alert_id = first_alert(night)
    accounts.set_role(night, "root", "ops", "observer", "moved to science")
    with pytest.raises(PermissionDenied, match="Operator"):
        responses.alert_action(night, "ops", alert_id, "acknowledge", "x")
    with pytest.raises(AccessError, match="own role"):
        accounts.set_role(night, "root", "root", "observer", "oops")


# --- alerts ----------------------------------------------------------------------------------------------------


def test_operator_acknowledges_escalates_resolves_with_notes_and_audit(night):
    alert_id = first_alert(night)
    with pytest.raises(PermissionDenied, match="acknowledge alerts needs the Operator role"):
        responses.alert_action(night, "obs", alert_id, "acknowledge", "I saw it")
    with pytest.raises(AccessError, match="note"):
        responses.alert_action(night, "ops", alert_id, "acknowledge", "  ")
    assert responses.alert_action(night, "ops", alert_id, "acknowledge", "paged science") == "acknowledged"
    assert responses.alert_action(night, "adm", alert_id, "escalate", "needs the lead") == "escalated"
    with pytest.raises(AccessError, match="cannot acknowledge"):
        responses.alert_action(night, "ops", alert_id, "acknowledge", "again")
    assert responses.alert_action(night, "ops", alert_id, "resolve", "follow-up scheduled") == "resolved"
    with night.engine.connect() as conn:
        assert conn.execute(sa.select(alerts.c.status).where(alerts.c.alert_id == alert_id)).scalar() == "resolved"
    assert [row["action"] for row in responses.alert_history(night, alert_id)] == ["acknowledge", "escalate", "resolve"]
    trail = [(e.action, e.actor, e.before, e.after, e.note) for e in reversed(audit_rows(night, "alert."))]
    assert trail == [
        ("alert.acknowledge", "ops", {"status": "open"}, {"status": "acknowledged"}, "paged science"),
        ("alert.escalate", "adm", {"status": "acknowledged"}, {"status": "escalated"}, "needs the lead"),
        ("alert.resolve", "ops", {"status": "escalated"}, {"status": "resolved"}, "follow-up scheduled"),
    ]
    assert alert_id in responses.first_responses(night)


def test_response_deadlines_follow_the_guide():
    from datetime import datetime, timedelta, timezone

    friday = datetime(2025, 9, 5, 20, 0, tzinfo=timezone.utc)
    assert responses.response_deadline("CRITICAL", friday) - friday == timedelta(minutes=15)
    assert responses.response_deadline("HIGH", friday) - friday == timedelta(hours=1)
    assert responses.response_deadline("MEDIUM", friday) - friday == timedelta(hours=4)
    low = responses.response_deadline("LOW", friday, "UTC")
    assert (low.weekday(), low.hour) == (0, 17)  # Friday evening: Monday's close of business


# --- review queue --------------------------------------------------------------------------------------------


def test_review_decisions_are_recorded_on_the_event_lineage(night):
    with night.engine.connect() as conn:
        event_id = conn.execute(sa.select(review_queue.c.event_id).order_by(review_queue.c.event_id)).scalar()
    with pytest.raises(PermissionDenied):
        responses.decide_review(night, "obs", event_id, "promote", "looks real")
    made = responses.decide_review(night, "ops", event_id, "promote", "looks real, rising")
    assert made.status == "promoted"
    responses.decide_review(night, "adm", event_id, "comment", "spectrum requested")
    with pytest.raises(AccessError, match="already promoted"):
        responses.decide_review(night, "ops", event_id, "reject", "changed my mind")
    with night.engine.connect() as conn:
        payload = json.loads(conn.execute(sa.select(events.c.payload).where(events.c.event_id == event_id)).scalar())
        status = conn.execute(sa.select(review_queue.c.status).where(review_queue.c.event_id == event_id)).scalar()
    assert status == "promoted"
    assert payload["lineage"]["review"] == "promoted" and payload["lineage"]["reviewed_by"] == "ops"
    assert [(d["decision"], d["actor"]) for d in responses.review_history(night, event_id)] == [
        ("promote", "ops"),
        ("comment", "adm"),
    ]
    assert [e.action for e in audit_rows(night, "review.")] == ["review.comment", "review.promote"]


# --- thresholds and configuration -------------------------------------------------------------------------------


def test_thresholds_published_by_operators_only_and_audited(night):
    config = load_config()
    proposal = with_cut_value(config.filters, "ztf", config.filters.cuts_for("ztf")[0].name, 0.9)
    with pytest.raises(PermissionDenied, match="adjust thresholds"):
        tuning.publish_thresholds(night, "obs", proposal, config.filters, "tighter")
    assert ThresholdStore(night).latest("filters") is None
    version = tuning.publish_thresholds(night, "ops", proposal, config.filters, "too many bogus")
    assert ThresholdStore(night).latest("filters").version.endswith(f"+live.{version}")
    entry = audit_rows(night, "thresholds.")[0]
    assert entry.actor == "ops" and entry.before == config.filters.model_dump(mode="json", by_alias=True)
    assert entry.after["ztf"][0]["value"] == 0.9
    with pytest.raises(AccessError, match="nothing changed"):
        tuning.publish_thresholds(night, "ops", proposal, ThresholdStore(night).latest("filters"), "again")


def test_configuration_documents_admin_only_validated_versioned_audited(night):
    document = sysconfig.current(night, "notifications").data
    assert document["levels"]["HIGH"]["channels"] == ["slack-ops", "webhook"]  # the shipped file, no version yet
    changed = json.loads(json.dumps(document))
    changed["levels"]["HIGH"]["channels"] = ["slack-ops", "email"]
    with pytest.raises(PermissionDenied, match="Admin"):
        sysconfig.save(night, "ops", "notifications", changed, "mail HIGH too")
    unknown = json.loads(json.dumps(changed))
    unknown["levels"]["HIGH"]["channels"] = ["pager-of-doom"]
    with pytest.raises(ValueError, match="unknown channels"):
        sysconfig.save(night, "adm", "notifications", unknown, "typo")
    saved = sysconfig.save(night, "adm", "notifications", changed, "mail HIGH too")
    assert saved.version == 1 and saved.data["levels"]["HIGH"]["channels"] == ["slack-ops", "email"]
    with pytest.raises(AccessError, match="nothing changed"):
        sysconfig.save(night, "adm", "notifications", changed, "again")
    entry = audit_rows(night, "config.")[0]
    assert (entry.actor, entry.target, entry.note) == ("adm", "config:notifications:v1", "mail HIGH too")
    assert entry.before["levels"]["HIGH"]["channels"] == ["slack-ops", "webhook"]
    assert entry.after["levels"]["HIGH"]["channels"] == ["slack-ops", "email"]
    agents = sysconfig.current(night, "agents").data
    agents["agents"]["history"]["timeout_ms"] = agents["agents"]["history"]["budget_ms"] + 1
    with pytest.raises(ValueError, match="longer than budget_ms"):
        sysconfig.save(night, "adm", "agents", agents, "slower")
    assert {"sources", "notifications", "agents"} <= set(sysconfig.REGISTRY)


def test_a_new_configuration_kind_is_one_registration(night):
    from pydantic import BaseModel

    class Pager(BaseModel):
        version: str
        minutes: int

    sysconfig.register("pager", Pager, "Pager", default={"version": "1", "minutes": 15})
    try:
        assert sysconfig.save(night, "adm", "pager", {"version": "2", "minutes": 10}, "faster").version == 1
        with pytest.raises(ValueError, match="minutes"):
            sysconfig.save(night, "adm", "pager", {"version": "3", "minutes": "soon"}, "x")
    finally:
        del sysconfig.REGISTRY["pager"]


# --- access procedures -----------------------------------------------------------------------------------------


def test_operator_access_needs_manager_approval_only(night):
    request = procedures.request_access(night, "obs", "operator", "night shifts from October on")
    with pytest.raises(AccessError, match="open request"):
        procedures.request_access(night, "obs", "admin", "and more, please, for the config")
    with pytest.raises(PermissionDenied, match="approve access needs the Admin role"):
        procedures.approve_request(night, "ops", request.request_id, "fine")
    granted = procedures.approve_request(night, "adm", request.request_id, "manager ok")
    assert granted.status == "granted" and accounts.get_user(night, "obs").role == "operator"
    target = f"request:{request.request_id}"  # (the fixture's own Admin grant went through the procedure too)
    assert [e.action for e in audit_rows(night, "access.") if e.target == target] == [
        "access.granted",
        "access.request",
    ]


def test_admin_access_needs_a_security_review_by_someone_else(night):
    own = procedures.request_access(night, "adm", "super_admin", "to run the quarterly access review")
    with pytest.raises(AccessError, match="own access request"):
        procedures.approve_request(night, "adm", own.request_id, "me")
    request = procedures.request_access(night, "ops", "admin", "to maintain the notification channels")
    reviewed = procedures.approve_request(night, "adm", request.request_id, "manager ok")
    assert reviewed.status == "security_review" and accounts.get_user(night, "ops").role == "operator"
    with pytest.raises(PermissionDenied, match="security review needs the Super Admin role"):
        procedures.security_review(night, "adm", request.request_id, True, "ok")
    accounts.create_user(night, "root", "root2", "observer", PASSWORD)
    grant_by_procedure(night, "root2", "super_admin", "adm", "root")
    accounts.revoke(night, "root", "adm", "left")  # the approving manager leaves; the review still needs doing
    granted = procedures.security_review(night, "root2", request.request_id, True, "background check done")
    assert granted.status == "granted" and granted.security_reviewer == "root2"
    assert accounts.get_user(night, "ops").role == "admin"


def test_role_less_identity_may_only_request_access(night):
    user = accounts.register_identity(night, "Jane.Doe@facility.org")
    assert user.role is None and not user.can("view_dashboard")
    assert accounts.user_for_email(night, "jane.doe@FACILITY.org").name == user.name
    with pytest.raises(PermissionDenied, match="no role"):
        responses.alert_action(night, user.name, first_alert(night), "acknowledge", "x")
    request = procedures.request_access(night, user.name, "observer", "watching the night as a scientist")
    assert request.status == "pending"


def test_quarterly_access_review_lists_everyone_with_grant_history(night):
    accounts.set_role(night, "root", "obs", "operator", "promoted")
    accounts.revoke(night, "root", "adm", "terminated")
    rows = {row["user"]: row for row in procedures.access_review(night)}
    assert set(rows) == set(PEOPLE)
    assert rows["obs"]["role"] == "Operator" and "Observer by root" in rows["obs"]["grants"]
    assert "Operator by root (promoted)" in rows["obs"]["grants"]
    assert rows["adm"]["active"] == "revoked" and "revoked by root (terminated)" in rows["adm"]["grants"]
    csv_text = procedures.review_csv(list(rows.values()))
    assert csv_text.splitlines()[0] == ",".join(procedures.REVIEW_COLUMNS) and len(csv_text.splitlines()) == 5
    with pytest.raises(PermissionDenied):
        procedures.access_review_for(night, "ops")


def test_cli_users_add_bootstrap_and_review(tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setenv("NIGHTWATCH_ADMIN_PASSWORD", "a-password-from-env")
    assert main(["users", "bootstrap", "--output", str(tmp_path)]) == 0
    assert "NIGHTWATCH_ADMIN_PASSWORD" in capsys.readouterr().out
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", "a-password-from-env")  # the admin's, for --as admin
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("another-long-password\n"))
    add = ["users", "add", "ana", "--role", "operator", "--password-stdin", "--output", str(tmp_path)]
    assert main([*add, "--as", "admin"]) == 0
    assert main(["users", "review", "--csv", "--output", str(tmp_path), "--as", "admin"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "user,email,role,active,created,last_login,grants"
    assert lines[2].startswith("admin,,Super Admin,yes,") and lines[3].startswith("ana,,Operator,yes,")
    store = HotStore(f"sqlite:///{tmp_path}/nightwatch.db")
    assert accounts.authenticate(store, "ana", "another-long-password").role == "operator"
    assert audit.audit_entries(store, action="user.create")[0].actor == "admin"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(role_grants)).scalar() == 2
    store.close()


# --- the audit log is append-only --------------------------------------------------------------------------------


def test_audit_log_offers_no_change_and_the_database_refuses_one(night):
    public = {name for module in (accounts, audit, procedures) for name in dir(module) if not name.startswith("_")}
    assert not {name for name in public if "audit" in name and any(w in name for w in ("update", "delete", "edit"))}
    assert audit.audit_entries(night)  # the setup above wrote some
    for statement in (audit_log.update().values(note="forged"), audit_log.delete()):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), night.engine.begin() as conn:
            conn.execute(statement)
    assert all(entry.note != "forged" for entry in audit.audit_entries(night))


def test_audit_log_append_only_on_postgresql(postgres_url):
    store = HotStore(postgres_url)
    store.ensure_schema()
    assert accounts.bootstrap(store, "root", PASSWORD)
    for statement in (audit_log.update().values(note="forged"), audit_log.delete(), sa.text("TRUNCATE audit_log")):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
            conn.execute(statement)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 1
    assert len(audit.audit_entries(store)) == 1
    store.close()


# --- login throttling, lockout, field checks, own password (issue 15, items 5, 7, 12) --------------------------


def attempts_checked(store: HotStore, name: str, password: str, tries: int, client: str | None = None) -> int:
    """How many of `tries` login attempts were actually checked (not refused by a lockout)."""
    from access.accounts import LoginLocked

    checked = 0
    for _ in range(tries):
        try:
            accounts.authenticate(store, name, password, client=client)
            checked += 1
        except LoginLocked:
            pass
    return checked


def test_failed_logins_lock_the_account_with_exponential_back_off_audited_once(store):
    import time

    from access import throttle
    from access.accounts import LoginLocked

    accounts.create_user_as_system(store, "test", "ana", "operator", PASSWORD)
    started = time.monotonic()
    # 60 guesses as fast as they come (well within a minute): only the first 5 are checked, then 30 s locked.
    assert attempts_checked(store, "ana", "wrong password!", 60) == 5
    assert time.monotonic() - started < 30
    with pytest.raises(LoginLocked, match=r"too many failed logins: try again in (29|30) s"):
        accounts.authenticate(store, "ana", PASSWORD)  # even the right password waits
    assert len(audit_rows(store, "login.failed")) == 4 and len(audit_rows(store, "login.locked")) == 1
    # The lockout ends; the next failure locks again for twice as long (one more audit row, not one per guess).
    with store.engine.begin() as conn:
        conn.execute(throttle.login_throttle.update().values(locked_until=0.0))
    assert accounts.authenticate(store, "ana", "wrong again!!") is None
    with pytest.raises(LoginLocked) as locked:
        accounts.authenticate(store, "ana", "wrong again!!")
    assert 59 <= locked.value.retry_after_s <= 60
    assert len(audit_rows(store, "login.locked")) == 2 and len(audit_rows(store, "login.failed")) == 4
    # After it, the right password works and clears the count.
    with store.engine.begin() as conn:
        conn.execute(throttle.login_throttle.update().values(locked_until=0.0))
    assert accounts.authenticate(store, "ana", PASSWORD).name == "ana"
    assert attempts_checked(store, "ana", "wrong password!", 5) == 5  # a fresh count


def test_one_client_guessing_many_accounts_is_locked_out(store):
    for name in ("bea", "cid"):
        accounts.create_user_as_system(store, "test", name, "observer", PASSWORD)
    names = [f"user{i}" for i in range(20)]
    checked = sum(attempts_checked(store, name, "guess-guess-guess", 1, client="203.0.113.9") for name in names)
    assert checked == 5  # the client is locked after 5, whatever names it tries
    assert attempts_checked(store, "bea", PASSWORD, 1, client="203.0.113.9") == 0
    assert accounts.authenticate(store, "bea", PASSWORD, client="198.51.100.4").name == "bea"  # others log in


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_login_fields_are_checked_before_any_query(backend, tmp_path, request):
    """A 200-character name or a NUL used to crash the login page on PostgreSQL; now they fail like a bad password."""
    url = f"sqlite:///{tmp_path}/hot.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = HotStore(url)
    store.ensure_schema()
    accounts.create_user_as_system(store, "test", "dan", "observer", PASSWORD)
    for name, password in (("x" * 200, PASSWORD), ("d\x00an", PASSWORD), ("dan\udfff", PASSWORD), ("dan", "p" * 5000)):
        assert accounts.authenticate(store, name, password, client="192.0.2.1") is None
    assert len(audit_rows(store, "login.failed")) == 4 and all(
        len(entry.actor) <= 160 for entry in audit_rows(store, "login.failed")
    )
    assert accounts.authenticate(store, "dan", PASSWORD).name == "dan"
    store.close()


def test_changing_ones_own_password_needs_the_current_one(night):
    with pytest.raises(AccessError, match="current password is wrong"):
        accounts.reset_password(night, "ops", "ops", "a-brand-new-password")
    with pytest.raises(AccessError, match="current password is wrong"):
        accounts.reset_password(night, "ops", "ops", "a-brand-new-password", "not-the-password")
    accounts.reset_password(night, "ops", "ops", "a-brand-new-password", PASSWORD)
    assert accounts.authenticate(night, "ops", "a-brand-new-password").name == "ops"
    accounts.reset_password(night, "root", "ops", "set-by-the-super-admin")  # a Super Admin for someone else
    assert accounts.authenticate(night, "ops", "set-by-the-super-admin").name == "ops"
    with pytest.raises(PermissionDenied):
        accounts.reset_password(night, "adm", "ops", "an-admin-may-not-do-this")


def test_the_console_hides_error_details_from_users():
    """Streamlit shows exceptions with their messages and tracebacks by default; the console turns that off."""
    import subprocess
    import sys

    from tests.conftest import REPO

    read = "from streamlit import config; config.get_config_options(force_reparse=True); "
    read += "print(config.get_option('client.showErrorDetails'))"
    shown = subprocess.run([sys.executable, "-c", read], cwd=REPO, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "none"  # false would mean "stacktrace" in this Streamlit
    assert "--client.showErrorDetails none" in (REPO / "Makefile").read_text()
