"""On-call: the weekly rotation, the escalation ladder walked with a fake clock, the handoff report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ops import responses
from ops.oncall import escalate_due, escalations_for, handoff, on_call
from tests.conftest import REPO

# The real receivers (HTTP, SMTP) and the configuration pointing at them, shared with the notification tests.
from tests.test_notify import T0, add_alert, add_user, notifier_for, receivers_fixture, setup_fixture, smtp_fixture  # noqa: F401


def test_rotation_moves_weekly_and_the_lead_covers_business_hours_only(config):
    rota = config.oncall
    week0 = on_call(rota, T0)  # Wednesday 12:00 UTC of the first week
    assert {role: entry.person_id for role, entry in week0.items()} == {
        "primary": "amoreau",
        "secondary": "jokafor",
        "engineering_lead": "rsilva",
        "director": "director",
    }
    assert week0["engineering_lead"].covered
    assert week0["primary"].until == datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
    week1 = on_call(rota, T0 + timedelta(days=7))
    assert (week1["primary"].person_id, week1["secondary"].person_id) == ("jokafor", "lchen")
    assert on_call(rota, T0 + timedelta(days=21))["primary"].person_id == "amoreau"  # three people, three weeks
    night = on_call(rota, T0 + timedelta(hours=11))  # 23:00 UTC
    assert not night["engineering_lead"].covered and night["primary"].covered
    saturday = on_call(rota, T0 + timedelta(days=3))
    assert not saturday["engineering_lead"].covered


def test_an_unacknowledged_critical_alert_climbs_the_ladder_until_acknowledged(setup):
    config, store, receivers, smtp, clock = setup
    add_user(store, "olga", "operator")
    alert_id = add_alert(store, 60, created_at=T0)
    other = add_alert(store, 61, level="HIGH", created_at=T0)  # HIGH does not escalate
    notifier = notifier_for(config, store, clock)

    def walk(minutes: int) -> list[tuple[int, str, str]]:
        clock[0] = T0 + timedelta(minutes=minutes)
        return [(row["step"], row["person"], row["status"]) for row in escalate_due(store, config, notifier, clock[0])]

    assert walk(0) == [(0, "amoreau", "paged")]  # the primary, on the pager
    assert walk(14) == []
    assert walk(15) == [(1, "jokafor", "paged")]  # 15 min: the backup on-call
    assert walk(15) == []  # each step once
    assert walk(30) == [(2, "rsilva", "paged")]  # 30 min: the engineering lead (business hours)
    responses.alert_action(store, "olga", alert_id, "acknowledge", "on it")
    assert walk(60) == []  # 1 hour: the director would be next, but the alert was acknowledged
    notifier.close()

    rows = escalations_for(store, alert_id)
    assert [(row["step"], row["after_min"], row["role"]) for row in rows] == [
        (0, 0, "primary"),
        (1, 15, "secondary"),
        (2, 30, "engineering_lead"),
    ]
    assert escalations_for(store, other) == []
    pages = [r["body"] for r in receivers["pagerduty"].received]
    assert [(p["event_action"], p["dedup_key"]) for p in pages] == [("trigger", alert_id), ("acknowledge", alert_id)]
    assert pages[0]["payload"]["summary"].startswith("Escalation step 0 (page the on-call)")
    assert [message.rcpt_tos for message in smtp.messages] == [["jokafor@facility.org"], ["eng-lead@facility.org"]]
    assert "J. Okafor, please respond" in smtp.messages[0].content.decode()


def test_the_ladder_reaches_the_director_and_skips_the_lead_out_of_hours(setup):
    config, store, _receivers, smtp, clock = setup
    night = T0 + timedelta(hours=11)  # 23:00 UTC: the engineering lead is off
    alert_id = add_alert(store, 62, created_at=night)
    notifier = notifier_for(config, store, clock)
    clock[0] = night + timedelta(minutes=61)  # the runner was down for an hour: every due step at once
    steps = escalate_due(store, config, notifier, clock[0])
    notifier.close()
    assert [(row["step"], row["role"], row["status"]) for row in steps] == [
        (0, "primary", "paged"),
        (1, "secondary", "paged"),
        (2, "engineering_lead", "skipped"),
        (3, "director", "paged"),
    ]
    assert "business hours only" in escalations_for(store, alert_id)[2]["note"]
    assert [message.rcpt_tos for message in smtp.messages] == [["jokafor@facility.org"], ["director@facility.org"]]


def test_handoff_lists_incidents_escalations_failures_and_open_alerts(setup, tmp_path, capsys, monkeypatch):
    from cli.main import main

    config, store, receivers, _smtp, clock = setup
    add_user(store, "olga", "operator")
    critical = add_alert(store, 70, created_at=T0 - timedelta(minutes=20))
    high = add_alert(store, 71, level="HIGH", created_at=T0 - timedelta(hours=2))
    handled = add_alert(store, 72, level="HIGH", created_at=T0 - timedelta(minutes=5))
    receivers["webhook"].answer(500)
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(high)
    escalate_due(store, config, notifier, T0)
    notifier.close()
    responses.alert_action(store, "olga", handled, "acknowledge", "known object")

    report = handoff(store, config, T0)
    assert [(a["alert_id"], a["overdue"]) for a in report["incidents"]] == [(critical, True), (high, True)]
    assert [(e["alert_id"], e["step"], e["role"]) for e in report["escalations"]] == [(critical, 1, "secondary")]
    assert [(f["alert_id"], f["channel"], f["status"]) for f in report["failing_deliveries"]] == [
        (high, "webhook", "retrying")
    ]
    assert {a["alert_id"] for a in report["open_alerts"]} == {critical, high, handled}
    assert report["on_call"]["primary"]["person"] == "amoreau"
    assert report["next_on_call"]["primary"]["person"] == "jokafor"

    where = ["--db-url", store.url, "--config", str(tmp_path / "config"), "--at", T0.isoformat()]
    assert main(["oncall", "handoff", *where]) == 0
    out = capsys.readouterr().out
    assert "Active incidents (2)" in out and f"{critical}  OVERDUE" in out
    assert "Failing deliveries (1)" in out
    assert main(["oncall", "now", *where]) == 0
    assert "Primary            A. Moreau (amoreau) via pagerduty" in capsys.readouterr().out


def test_the_ladder_climbs_when_each_roles_response_min_passes(setup, tmp_path, monkeypatch):
    import pytest
    import yaml

    from config import load_config
    from config.settings import ConfigError

    _config, store, _receivers, _smtp, clock = setup
    folder = tmp_path / "config"  # the receivers' notifications stay; only the on-call document changes
    oncall = yaml.safe_load((REPO / "config" / "oncall.yaml").read_text())
    oncall["roles"]["primary"]["response_min"] = 5  # a faster primary: the backup is paged at 5 min, not 15
    oncall["roles"]["secondary"]["response_min"] = 10
    (folder / "oncall.yaml").write_text(yaml.safe_dump(oncall))
    config = load_config(folder)
    assert [step.after_min for step in config.oncall.escalation.steps] == [0, 5, 10, 60]
    alert_id = add_alert(store, 63, created_at=T0)
    notifier = notifier_for(config, store, clock)
    clock[0] = T0 + timedelta(minutes=5)
    assert [(row["step"], row["role"]) for row in escalate_due(store, config, notifier, clock[0])] == [
        (0, "primary"),
        (1, "secondary"),
    ]
    clock[0] = T0 + timedelta(minutes=10)
    assert [row["role"] for row in escalate_due(store, config, notifier, clock[0])] == ["engineering_lead"]
    notifier.close()
    assert [row["after_min"] for row in escalations_for(store, alert_id)] == [0, 5, 10]

    # One source of truth: a step that writes a different time, or follows a role with no response time, is refused.
    oncall["escalation"]["steps"][1]["after_min"] = 20
    (folder / "oncall.yaml").write_text(yaml.safe_dump(oncall))
    with pytest.raises(ConfigError, match="disagrees with primary.response_min 5"):
        load_config(folder)
    del oncall["escalation"]["steps"][1]["after_min"]
    del oncall["roles"]["engineering_lead"]["response_min"]
    (folder / "oncall.yaml").write_text(yaml.safe_dump(oncall))
    with pytest.raises(ConfigError, match="role 'engineering_lead' has no response_min"):
        load_config(folder)
