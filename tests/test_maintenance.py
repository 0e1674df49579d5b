"""Maintenance windows: the guide's schedule enforced, silencing during a window, the commands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from access import audit
from access.roles import PermissionDenied
from ops import maintenance
from ops.maintenance import MaintenanceError, active_window
from ops.notify import deliveries_for

# The real receivers (HTTP, SMTP) and the configuration pointing at them, shared with the notification tests.
from tests.test_notify import (  # noqa: F401
    T0,
    add_alert,
    add_user,
    notifier_for,
    receivers_fixture,
    setup_fixture,
    smtp_fixture,
    write_config,
)

TUESDAY_10 = datetime(2026, 1, 13, 10, 0, tzinfo=timezone.utc)
SATURDAY_06 = datetime(2026, 1, 17, 6, 0, tzinfo=timezone.utc)


def test_announcements_follow_the_guide_schedule(store, config):
    add_user(store, "olga", "operator")
    add_user(store, "otto", "observer")
    rules = config.maintenance
    monday_noon = TUESDAY_10 - timedelta(hours=22)

    with pytest.raises(MaintenanceError, match="announced too late: Brief downtime needs 24 h notice"):
        maintenance.announce(store, rules, "olga", "brief", TUESDAY_10, None, "model update", now=monday_noon)
    with pytest.raises(MaintenanceError, match="on Tuesday only"):
        maintenance.announce(store, rules, "olga", "brief", TUESDAY_10 + timedelta(days=1), None, "x", now=T0)
    with pytest.raises(MaintenanceError, match="within 10:00-14:00"):
        maintenance.announce(
            store, rules, "olga", "brief", TUESDAY_10, TUESDAY_10 + timedelta(hours=5), "x", now=monday_noon
        )
    with pytest.raises(MaintenanceError, match="168 h notice"):
        maintenance.announce(
            store, rules, "olga", "extended", SATURDAY_06, None, "x", now=SATURDAY_06 - timedelta(days=6)
        )
    with pytest.raises(PermissionDenied):
        maintenance.announce(store, rules, "otto", "brief", TUESDAY_10, None, "x", now=T0)

    brief = maintenance.announce(store, rules, "olga", "brief", TUESDAY_10, None, "model update", now=T0)
    assert (brief.starts_at, brief.ends_at, brief.silence) == (TUESDAY_10, TUESDAY_10.replace(hour=14), True)
    extended = maintenance.announce(
        store, rules, "olga", "extended", SATURDAY_06, None, "quarterly test", now=SATURDAY_06 - timedelta(days=8)
    )
    assert extended.ends_at == SATURDAY_06.replace(hour=18)
    rolling = maintenance.announce(store, rules, "olga", "rolling", T0, None, "worker restart", now=T0)
    assert (rolling.ends_at, rolling.silence) == (T0 + timedelta(hours=1), False)

    actions = [entry.action for entry in audit.audit_entries(store, actor="olga")]
    assert actions.count("maintenance.refused") == 4 and actions.count("maintenance.announce") == 3
    cancelled = maintenance.cancel(store, "olga", extended.window_id, "moved to next quarter")
    assert cancelled.status == "cancelled"
    assert [w.kind for w in maintenance.list_windows(store, now=T0)] == ["rolling", "brief"]


def test_medium_and_low_are_silenced_during_a_window_and_critical_and_high_still_go_out(setup, tmp_path, monkeypatch):
    _config, store, receivers, smtp, clock = setup
    levels = {
        "CRITICAL": {"channels": ["pagerduty", "slack-ops", "email", "webhook"], "throttle": False},
        "HIGH": {"channels": ["slack-ops", "webhook"]},
        "MEDIUM": {"channels": ["slack-ops"]},  # sent at once outside windows, on this site
        "LOW": {"channels": []},
    }
    config = write_config(tmp_path / "medium", monkeypatch, receivers, smtp.port, levels=levels)
    add_user(store, "olga", "operator")
    window = maintenance.announce(store, config.maintenance, "olga", "brief", TUESDAY_10, None, "db upgrade", now=T0)
    assert active_window(store, TUESDAY_10 - timedelta(seconds=1)) is None
    assert active_window(store, TUESDAY_10 + timedelta(hours=1)) == window

    clock[0] = TUESDAY_10 + timedelta(hours=1)
    notifier = notifier_for(config, store, clock)
    high = add_alert(store, 80, level="HIGH", created_at=clock[0])
    critical = add_alert(store, 81, created_at=clock[0])
    medium = add_alert(store, 83, level="MEDIUM", created_at=clock[0])
    notifier.notify_alert(high)
    notifier.notify_alert(critical)
    notifier.notify_alert(medium)
    rows = deliveries_for(store, medium)
    assert {row["status"] for row in rows} == {"suppressed"}
    assert f"maintenance window #{window.window_id}" in rows[0]["error"]
    # A 4-hour window would hold a HIGH alert past its 1-hour response time: CRITICAL and HIGH go out.
    assert {row["status"] for row in deliveries_for(store, critical)} == {"delivered"}
    assert {row["status"] for row in deliveries_for(store, high)} == {"delivered"}
    assert [r["body"]["dedup_key"] for r in receivers["pagerduty"].received] == [critical]
    assert sorted(r["body"]["alert_id"] for r in receivers["webhook"].received) == sorted([critical, high])

    clock[0] = TUESDAY_10.replace(hour=14)  # the window is over
    after = add_alert(store, 82, level="MEDIUM", created_at=clock[0])
    notifier.notify_alert(after)
    notifier.close()
    assert {row["status"] for row in deliveries_for(store, after)} == {"delivered"}


def test_maintenance_commands_announce_list_and_cancel(setup, tmp_path, capsys):
    from cli.main import main

    _config, store, receivers, _smtp, _clock = setup
    add_user(store, "olga", "operator")
    where = ["--db-url", store.url, "--config", str(tmp_path / "config")]
    now = datetime.now(timezone.utc)
    too_soon = now + timedelta(hours=2)
    code = main(
        ["maintenance", "announce", "--type", "extended", "--start", too_soon.isoformat(), "--reason", "x"]
        + ["--as", "olga", *where]
    )
    assert code == 1
    assert "refused:" in capsys.readouterr().err

    start = (now + timedelta(minutes=5)).replace(microsecond=0)
    code = main(
        ["maintenance", "announce", "--type", "rolling", "--start", start.isoformat(), "--reason", "restart"]
        + ["--as", "olga", *where]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "scheduled #1 rolling" in out and "announced on: slack-ops delivered" in out
    announced = receivers["slack"].received[-1]["body"]
    assert announced["blocks"][0]["text"]["text"].startswith("Maintenance scheduled: Rolling restart")
    assert main(["maintenance", "list", *where]) == 0
    assert "scheduled  #1 rolling" in capsys.readouterr().out
    assert main(["maintenance", "cancel", "1", "--reason", "not needed", "--as", "olga", *where]) == 0
    assert "Maintenance cancelled" in receivers["slack"].received[-1]["body"]["text"]
    assert main(["maintenance", "list", *where]) == 0
    assert "no maintenance window scheduled" in capsys.readouterr().out
