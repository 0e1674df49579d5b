"""`nightwatch system-test`: the quarterly test as one stored report, its checks on real local parts (HTTP and
SMTP receivers, the API and console servers, a batch run, a replay), and the console page showing the last run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from access import accounts
from cli.main import main
from ops import systemcheck
from ops.procedure import last_runs
from store.hot import HotStore
from store.layout import Outputs
from store.schema import escalations
from tests.conftest import copy_night

PASSWORD = "a-long-test-password"
STEPS = [
    "injection through every source",
    "replay a night from the archive",
    "backup and restore",
    "retention dry run",
    "notification channels",
    "API health",
    "console health",
    "escalation ladder (fake clock)",
]


@pytest.fixture
def night(night_template, tmp_path):
    folder = copy_night(night_template, tmp_path / "out")
    store = HotStore(Outputs.under(str(folder), None).db_url)
    store.ensure_schema()
    accounts.bootstrap(store, "root", PASSWORD)
    accounts.create_user(store, "root", "ops", "operator", PASSWORD)
    accounts.create_user(store, "root", "obs", "observer", PASSWORD)
    yield folder, store
    store.close()


def test_channels_reach_their_test_receivers_and_the_ladder_climbs_on_a_fake_clock(config, tmp_path):
    with systemcheck.local_receivers() as receivers:
        channels = systemcheck.channels_check(config, receivers)
        assert channels.passed, channels.evidence
        assert sorted(r["path"] for r in receivers.received) == ["/pagerduty", "/slack-ops", "/webhook"]
        assert [m.rcpt_tos for m in receivers.smtp_messages] == [["ops-lead@facility.org", "sci-lead@facility.org"]]
        ladder = systemcheck.escalation_check(config, receivers, tmp_path)
    assert ladder.passed, ladder.evidence
    steps = config.oncall.escalation.steps
    for step in steps:
        assert f"{step.after_min} min {step.role} paged" in ladder.evidence
    with HotStore(f"sqlite:///{tmp_path / 'ladder.db'}").engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(escalations)).scalar_one() == len(steps)


def test_backup_restore_and_retention_dry_run_leave_the_store_as_it_was(night, config, tmp_path):
    folder, store = night
    from core.event import utcnow
    from ops.backup import fingerprints

    before = fingerprints(store)
    checked = systemcheck.backup_and_restore(store, tmp_path / "scratch")
    assert checked.passed and "restored and matching the manifest" in checked.evidence
    dry = systemcheck.retention_dry_run(store, Outputs.under(str(folder), None), config, utcnow())
    assert dry.passed and "would delete" in dry.evidence
    assert fingerprints(store) == before


def test_a_service_that_does_not_answer_fails_its_step():
    outcome = systemcheck.http_health("http://127.0.0.1:19733/v1/health", timeout_s=1)
    assert not outcome.passed and "19733" in outcome.evidence


@pytest.mark.slow
def test_the_full_system_test_passes_and_the_console_shows_it(night, capsys, monkeypatch):
    folder, store = night
    ports = ["--api-port", "19741", "--console-port", "19742"]  # this suite's own ports
    code = main(["system-test", "--as", "ops", "--output", str(folder), "--count", "40", "--wait", "90", *ports])
    out = capsys.readouterr().out
    assert code == 0, out
    for step in STEPS:
        assert f"[PASS] {step}" in out, out
    (run,) = last_runs(store, "system_test")
    assert run.passed and [step["name"] for step in run.steps] == STEPS
    evidence = {step["name"]: step["evidence"] for step in run.steps}
    assert "ztf " in evidence["injection through every source"] and "gcn " in evidence["injection through every source"]
    assert "replayed into a scratch store" in evidence["replay a night from the archive"]
    assert "HTTP 200" in evidence["API health"] and "HTTP 200" in evidence["console health"]

    # An observer refused: running it needs the Operator role.
    assert main(["system-test", "--as", "obs", "--output", str(folder)]) == 2

    # The console's Maintenance page shows the last run, step by step.
    monkeypatch.setenv("NIGHTWATCH_OUTPUT", str(folder))
    monkeypatch.delenv("NIGHTWATCH_DB_URL", raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.text_input(key="login_name").input("obs")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    at.sidebar.radio(key="page").set_value("Maintenance").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Maintenance"
    shown = json.dumps([df.value.to_dict("records") for df in at.dataframe], default=str)
    for step in STEPS:
        assert step in shown
    assert any(f"PASSED: {run.run_id}" in expander.label for expander in at.expander)
