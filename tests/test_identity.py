"""Every command that changes state acts as someone (issue 16 item 2): `--as USER` with a password, or an API key
(a service account's for automation), the guide's role checked on the console's code path, and audited under
that name. Admin and above only through the access procedure; a role change revokes the old grants at once."""

from __future__ import annotations

import pytest

from access import accounts, apikeys, audit, identity, sessions
from access.roles import AccessError, PermissionDenied
from cli.main import main
from store.hot import HotStore
from store.thresholds import ThresholdStore
from tests.conftest import service_key

ROOT_PW = "root-password-long"
PW = "a-long-enough-password"


@pytest.fixture
def hot(tmp_path):
    store = HotStore(f"sqlite:///{tmp_path}/nightwatch.db")
    store.ensure_schema()
    accounts.bootstrap(store, "root", ROOT_PW)
    accounts.create_user(store, "root", "olga", "operator", PW)
    accounts.create_user(store, "root", "otto", "observer", PW)
    yield store
    store.close()


def set_cut(tmp_path, *extra: str) -> int:
    return main(["thresholds", "set-cut", "ztf", "real_bogus", "0.7", "--output", str(tmp_path), *extra])


def test_an_anonymous_threshold_change_is_refused(hot, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NIGHTWATCH_API_KEY", raising=False)
    monkeypatch.delenv("NIGHTWATCH_PASSWORD", raising=False)
    assert set_cut(tmp_path) == 2
    assert "give an identity: --as USER" in capsys.readouterr().err
    assert ThresholdStore(hot).latest("filters") is None  # nothing published
    assert audit.audit_entries(hot, action="thresholds.") == []


def test_a_wrong_role_or_password_is_refused(hot, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", PW)
    assert set_cut(tmp_path, "--as", "otto") == 2  # an Observer
    assert "adjust thresholds needs the Operator role (you are Observer)" in capsys.readouterr().err
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", "not-olgas-password")
    assert set_cut(tmp_path, "--as", "olga") == 2
    assert "wrong user name or password" in capsys.readouterr().err
    observer_key = service_key(hot.url, "observer", "dashboards-bot")
    monkeypatch.delenv("NIGHTWATCH_PASSWORD")
    monkeypatch.setenv("NIGHTWATCH_API_KEY", observer_key)
    assert set_cut(tmp_path) == 2
    assert "needs the Operator role" in capsys.readouterr().err
    assert ThresholdStore(hot).latest("filters") is None


def test_an_allowed_change_is_audited_under_its_actor(hot, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", PW)
    assert set_cut(tmp_path, "--as", "olga", "--note", "too many bogus") == 0
    entry = audit.audit_entries(hot, action="thresholds.filters")[0]
    assert entry.actor == "olga" and entry.note == "too many bogus"
    assert ThresholdStore(hot).history(1)[0]["author"] == "olga"
    # A script acts with a service account's key, audited under the service account's name.
    monkeypatch.delenv("NIGHTWATCH_PASSWORD")
    monkeypatch.setenv("NIGHTWATCH_API_KEY", service_key(hot.url, "operator", "tuning-bot"))
    assert main(["thresholds", "set-rule", "grb_localised", "pos_error_deg", "<=", "3", "--output", str(tmp_path)]) == 0
    assert audit.audit_entries(hot, action="thresholds.classification")[0].actor == "tuning-bot"


def test_users_add_admin_without_the_procedure_is_refused(hot, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", ROOT_PW)
    where = ["--output", str(tmp_path)]
    for role in ("admin", "super_admin"):
        assert main(["users", "add", "mallory", "--role", role, "--sso-only", "--email", "m@x.org", *where]) == 2
        assert "only through the access procedure" in capsys.readouterr().err
    assert accounts.get_user(hot, "mallory") is None
    with pytest.raises(AccessError, match="access procedure"):
        accounts.create_user(hot, "root", "mallory", "admin", PW)  # the console's path: the same refusal
    with pytest.raises(AccessError, match="access procedure"):
        accounts.set_role(hot, "root", "olga", "admin", "promote")
    # Anonymous `users add` of an Observer is refused too: every change acts as someone.
    monkeypatch.delenv("NIGHTWATCH_PASSWORD")
    assert main(["users", "add", "ana", "--role", "observer", "--sso-only", "--email", "a@x.org", *where]) == 2
    assert accounts.get_user(hot, "ana") is None


def test_admin_through_the_procedure_on_the_command_line(hot, tmp_path, capsys, monkeypatch):
    where = ["--output", str(tmp_path)]
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", PW)
    assert (
        main(
            ["users", "request", "--role", "admin", "--justification", "maintain the channels", "--as", "olga", *where]
        )
        == 0
    )
    assert "access request #1" in capsys.readouterr().out
    assert main(["users", "approve", "1", "--note", "ok", "--as", "otto", *where]) == 2  # an Observer cannot
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", ROOT_PW)
    assert main(["users", "approve", "1", "--note", "manager ok", "--as", "root", *where]) == 0
    assert accounts.get_user(hot, "olga").role == "operator"  # not yet: the security review
    assert main(["users", "security-review", "1", "--note", "checked", "--as", "root", *where]) == 0
    assert accounts.get_user(hot, "olga").role == "admin"
    actions = [(entry.actor, entry.action) for entry in audit.audit_entries(hot, action="access.")]
    assert actions[:3] == [("root", "access.granted"), ("root", "access.security_review"), ("olga", "access.request")]
    # The sole Super Admin reviewed its own approval (nobody else could): the log says so.
    assert "sole Super Admin" in audit.audit_entries(hot, action="access.granted")[0].note


def test_a_role_change_revokes_the_old_roles_sessions_and_keys_at_once(hot):
    token, key = apikeys.create_key(hot, "olga", "olga", "operator", "her script")
    session = sessions.issue(hot, "olga")
    assert sessions.verify(hot, session) == "olga" and apikeys.authenticate(hot, token).active
    accounts.set_role(hot, "root", "olga", "observer", "moved to science")
    assert sessions.verify(hot, session) is None  # the console session of the old role: gone
    assert not apikeys.authenticate(hot, token).active  # the key of the old role: refused by the API
    with pytest.raises(identity.NoIdentity, match="revoked"):
        identity.sign_in(hot, api_key=token)
    entry = audit.audit_entries(hot, action="grants.revoke")[0]
    assert entry.actor == "root" and entry.after["api_keys"] == [key.key_id]
    # She signs in again with her new role: only what an Observer may do.
    actor = identity.sign_in(hot, "olga", PW)
    with pytest.raises(PermissionDenied, match="Operator"):
        identity.authorize(hot, actor, "adjust_thresholds")


def test_service_accounts_cannot_log_in_nor_hold_admin(hot):
    token, key = identity.create_service_account(hot, "root", "nightly-bot", "operator", "the nightly retention")
    assert accounts.authenticate(hot, "nightly-bot", "") is None
    actor = identity.sign_in(hot, api_key=token)
    assert actor.name == "nightly-bot" and identity.authorize(hot, actor, "run_operations").role == "operator"
    with pytest.raises(AccessError, match="Observer or Operator"):
        identity.create_service_account(hot, "root", "root-bot", "admin", "everything")
    with pytest.raises(PermissionDenied):
        identity.create_service_account(hot, "olga", "olga-bot", "observer", "mine")
