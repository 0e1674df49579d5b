"""Releases of the cuts and rules: register, shadow diff, canary, promote, roll back; role-checked and audited."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from access import accounts
from access.roles import PermissionDenied
from cli.main import main
from ops import releases
from store.hot import HotStore
from store.layout import Outputs
from store.releases import ReleaseStore, in_canary
from store.schema import audit_log
from store.thresholds import LiveRules
from tests.conftest import copy_night

PASSWORD = "a-long-test-password"
STRICTER = ["new_optical_transient", "mag", "<=", "19.0"]  # fewer optical transients worth a look
BLIND = ["grb_localised", "pos_error_deg", "<=", "0.001"]  # no satellite burst stays critical


@pytest.fixture
def night(night_template, tmp_path):
    """A simulated night (events in the hot store and the archive) with an operator and an admin."""
    folder = copy_night(night_template, tmp_path / "out")
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    accounts.bootstrap(store, "root", PASSWORD)
    accounts.create_user(store, "root", "ops", "operator", PASSWORD)
    accounts.create_user(store, "root", "adm", "admin", PASSWORD)
    yield folder, store
    store.close()


def cli(folder, *argv) -> int:
    return main(["release", *argv, "--output", str(folder)])


def test_register_shadow_diff_promote_and_roll_back_from_the_command_line(night, capsys):
    folder, store = night
    assert cli(folder, "register", "classification", "--set-rule", *STRICTER, "--notes", "stricter", "--as", "ops") == 0
    assert "registered release 1" in capsys.readouterr().out

    # Shadow: the archive's night replayed through both versions; the diff names the events that change.
    assert cli(folder, "shadow", "1", "--as", "ops", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["considered"] > 50 and report["changed_count"] > 0
    assert set(report["transitions"]) == {"interesting->routine"}
    assert report["per_class"]["interesting"]["after"] < report["per_class"]["interesting"]["before"]
    assert report["injection"]["critical_recall"] == 1.0 and report["injection"]["passed"]
    changed = {change["event"] for change in report["changed"]}
    # An oracle apart from the diff: the events the archive holds as interesting with mag between 19 and 20.5.
    archived = releases.archived_events(Outputs.under(str(folder), None).archive_root, 3, 100000)
    expected = {
        e.event_id
        for e in archived
        if e.lineage.get("decided_by") == "rule:new_optical_transient" and e.mag is not None and e.mag > 19.0
    }
    assert changed == expected

    assert cli(folder, "diff", "1") == 0
    out = capsys.readouterr().out
    assert "interesting->routine" in out and "injection set: critical recall 100.0%" in out

    # An operator may register and shadow; promotion needs an admin.
    assert cli(folder, "promote", "1", "--as", "ops") == 2
    assert "needs the Admin role" in capsys.readouterr().err
    assert cli(folder, "promote", "1", "--as", "adm", "--note", "monthly update") == 0
    live = LiveRules(*releases.in_force(store, _config()), store.url, refresh_s=0)
    assert live.classification().version == "2026.11.1+release.1"
    assert live.classification().rules[6].when["mag"].value == 19.0

    assert cli(folder, "rollback", "1", "--as", "adm", "--note", "too strict after all") == 0
    assert capsys.readouterr().out.strip().endswith("deciding now: 2026.11.1")  # the shipped rules again
    assert (
        LiveRules(_config().filters, _config().classification, store.url, 0).classification().rules[6].when["mag"].value
        == 20.5
    )
    assert [r.status for r in ReleaseStore(store).list()] == ["rolled_back"]
    with store.engine.connect() as conn:
        actions = [row.action for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.audit_id))]
    assert actions[-4:] == ["release.register", "release.shadow", "release.promote", "release.rollback"]


def test_promotion_refused_when_the_injection_test_fails(night, capsys):
    folder, store = night
    assert cli(folder, "register", "classification", "--set-rule", *BLIND, "--notes", "too strict", "--as", "ops") == 0
    assert cli(folder, "shadow", "1", "--as", "ops") == 1  # the report says FAIL: exit 1
    assert "critical recall 0.0%" in capsys.readouterr().out
    assert cli(folder, "promote", "1", "--as", "adm") == 2
    assert "promotion refused: release 1 fails the injection test" in capsys.readouterr().err
    assert cli(folder, "canary", "1", "--as", "adm") == 2
    assert releases.in_force(store, _config())[1].version == "2026.11.1"  # nothing changed in force
    with store.engine.connect() as conn:
        assert "release.promote" not in {row.action for row in conn.execute(sa.select(audit_log))}


def test_canary_takes_a_fixed_share_by_event_id_and_its_watch_ends_it_on_alert_volume(night):
    folder, store = night
    config = _config()
    ids = [f"ztf:{n}" for n in range(20000)]
    share = sum(in_canary(event_id, 0.1) for event_id in ids) / len(ids)
    assert 0.09 < share < 0.11 and [in_canary(i, 0.1) for i in ids[:50]] == [in_canary(i, 0.1) for i in ids[:50]]

    # A release that makes every optical transient critical: passes the injection set's critical recall, but
    # its canary raises far more alerts than the rest.
    noisy = _everything_critical(releases.in_force(store, config)[1])
    release_id = releases.register(store, "ops", noisy, "noisy")
    with pytest.raises(PermissionDenied):
        releases.canary(store, "ops", release_id, config, 0.5)
    releases.canary(store, "adm", release_id, config, 0.5)
    live = LiveRules(config.filters, config.classification, store.url, refresh_s=0)
    decided = {i: live.classification(i).version for i in ids[:200]}
    assert {v for i, v in decided.items() if in_canary(i, 0.5)} == {"2026.11.1+release.1"}
    assert {v for i, v in decided.items() if not in_canary(i, 0.5)} == {"2026.11.1"}

    # Events as a job decides them while the canary runs: the canary's share all critical.
    _decide_night_again(store, live)
    result = releases.watch_canary(store, release_id, config, duration_s=0, sleep=lambda s: None)
    assert not result.passed and "alert volume" in result.problems[0]
    assert ReleaseStore(store).get(release_id).status == "rolled_back"
    assert live.classification("anything").version == "2026.11.1"


def _config():
    from config.settings import load_config

    return load_config()


def _everything_critical(rules):
    """The rules with a first rule that makes every event critical."""
    data = rules.model_dump(mode="json", by_alias=True)
    catch_all = {"name": "everything", "when": {"source": {"in": ["gcn", "ztf", "rubin"]}}, "class": "critical"}
    data["rules"].insert(0, {**catch_all, "score": 0.99})
    return type(rules).model_validate(data)


def _decide_night_again(store, live) -> None:
    """Re-decide the stored events through `live` (as the pipeline's steps do) and store them as new, now."""
    from core.decisions import apply_cuts, classify, undecided
    from core.event import Event, utcnow
    from store.schema import events

    with store.engine.begin() as conn:
        rows = conn.execute(sa.select(events.c.event_id, events.c.payload)).all()
        for row in rows:
            event = undecided(Event.model_validate_json(row.payload))
            event = classify(apply_cuts(event, live.filters(event.event_id)), live.classification(event.event_id))
            conn.execute(
                events.update()
                .where(events.c.event_id == row.event_id)
                .values(
                    event_class=event.event_class, payload=event.model_dump_json(exclude={"raw"}), stored_at=utcnow()
                )
            )
