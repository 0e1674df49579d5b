"""Live thresholds: versions in the hot store, picked up by running steps, recorded on every event."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from cli.main import main
from pipeline.batch import run
from store.hot import HotStore
from store.schema import events
from store.thresholds import LiveRules, ThresholdStore, with_cut_value, with_rule_condition
from tests.conftest import DATA, act_as_service


def test_versions_round_trip_and_validate(store, config):
    versions = ThresholdStore(store)
    assert versions.latest("filters") is None
    stricter = with_cut_value(config.filters, "ztf", "real_bogus", 0.8)
    number = versions.publish(stricter, author="op", note="stricter")
    latest = versions.latest("filters")
    assert latest.version == f"{config.filters.version}+live.{number}"
    assert latest.cuts_for("ztf")[0].value == 0.8
    rules = with_rule_condition(config.classification, "grb_localised", "pos_error_deg", "<=", 2.0)
    number = versions.publish(rules, author="op")
    assert versions.latest("classification").rules[0].when["pos_error_deg"].value == 2.0
    assert versions.latest("classification").version.endswith(f"+live.{number}")
    with pytest.raises(ValueError, match="no cut 'nope'"):
        with_cut_value(config.filters, "ztf", "nope", 1)
    with pytest.raises(ValueError, match="needs a number"):
        with_cut_value(config.filters, "ztf", "real_bogus", "high")
    with pytest.raises(ValueError, match="no rule"):
        with_rule_condition(config.classification, "nope", "mag", "<", 1)


def test_live_rules_pick_up_a_new_version_after_refresh(store, config):
    live = LiveRules(config.filters, config.classification, store.url, refresh_s=0.2)
    assert live.filters().version == config.filters.version
    ThresholdStore(store).publish(with_cut_value(config.filters, "ztf", "seeing", 3.0), author="op")
    time.sleep(0.25)
    assert live.filters().cuts_for("ztf")[3].value == 3.0
    assert "+live." in live.filters().version


def test_live_rules_keep_the_last_good_version_when_the_store_is_unreadable(config):
    live = LiveRules(config.filters, config.classification, "sqlite:////nonexistent-dir/x.db", refresh_s=0)
    assert live.classification() == config.classification


def test_a_run_decides_with_the_published_version(tmp_path, monkeypatch):
    glob = f"{DATA}/gcn/voevent/*.xml"
    shipped, live = tmp_path / "shipped", tmp_path / "live"
    act_as_service(monkeypatch, f"sqlite:///{live}/nightwatch.db")
    run([f"--input={glob}", f"--output={shipped}"])
    assert main(["thresholds", "set-rule", "grb_localised", "pos_error_deg", "<=", "0.1", "--output", str(live)]) == 0
    run([f"--input={glob}", f"--output={live}"])

    def decisions(folder):
        with HotStore(f"sqlite:///{folder}/nightwatch.db").engine.connect() as conn:
            rows = conn.execute(sa.select(events.c.event_id, events.c.event_class, events.c.payload)).all()
        return {row.event_id: (row.event_class, json.loads(row.payload)["lineage"]["rules_version"]) for row in rows}

    before, after = decisions(shipped), decisions(live)
    assert {version for _, version in before.values()} == {"2026.11.1"}
    assert {version for _, version in after.values()} == {"2026.11.1+live.1"}
    # INTEGRAL's 0.06 deg localisation stays critical; Fermi GBM's degree-scale ones no longer are.
    assert [cls for cls, _ in after.values()].count("critical") < [cls for cls, _ in before.values()].count("critical")
    assert after["gcn:ivo://nasa.gsfc.gcn/INTEGRAL#Weak_Pos_010409-0-368"][0] == "critical"
