"""The runbooks' missing steps: worker status from heartbeats (High queue depth step 1), the notifier's heartbeat
(Critical alert not sent step 1), agent resources and the slowest events (Agent timeout steps 2 and 5), and the
sources' contacts where a runbook says to contact the source."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import sqlalchemy as sa

from cli.main import main
from config.settings import load_config
from core.event import utcnow
from ops.health import runbook_contacts
from ops.health.report import RUNBOOKS
from ops.workers import notifier_status, record_beat, workers
from store.hot import HotStore
from store.schema import agent_metrics, events, heartbeats
from tests.conftest import copy_night
from tests.test_notify import add_alert


def night_store(night_template, tmp_path) -> tuple[HotStore, list[str]]:
    folder = copy_night(night_template, tmp_path / "out")
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    return store, ["--db-url", store.url]


def test_a_batch_run_records_its_heartbeat_and_workers_shows_it(night_template, tmp_path, capsys):
    store, where = night_store(night_template, tmp_path)
    (batch,) = workers(store, kind="batch", include_stopped_h=24 * 365)
    assert batch.run_id == "console-test" and batch.state == "stopped" and not batch.stale
    assert batch.processed == store.count(events) and batch.backlog == 0
    assert batch.throughput_per_s and batch.throughput_per_s > 0
    assert main(["workers", *where, "--hours", "1000000"]) == 0
    out = capsys.readouterr().out
    assert batch.worker_id[:44] in out and "stopped" in out and "intake: every source pulling" in out

    # A streaming worker that stopped beating: STALE, and the command fails.
    record_beat(store, "stream:host:1:run-x", "stream", state="running", started_at=utcnow(), processed=5, errors=1)
    with store.engine.begin() as conn:
        conn.execute(
            heartbeats.update()
            .values(beat_at=utcnow() - timedelta(minutes=5))
            .where(heartbeats.c.worker_id == "stream:host:1:run-x")
        )
    assert main(["workers", *where]) == 1
    out = capsys.readouterr().out
    assert "STALE (running)" in out and "1 worker(s) stale" in out
    assert main(["workers", *where, "--json"]) == 1
    shown = {row["worker_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert shown["stream:host:1:run-x"]["stale"] is True and shown["stream:host:1:run-x"]["errors"] == 1


def test_the_notifier_beats_and_alerts_check_names_a_stale_one_as_the_cause(night_template, tmp_path, capsys):
    store, where = night_store(night_template, tmp_path)
    assert notifier_status(store)[0] == "never"
    assert main(["notify", "run", "--once", *where]) == 0
    capsys.readouterr()
    state, latest = notifier_status(store)
    assert state == "ok" and latest.kind == "notifier"
    # An unsent CRITICAL alert and a notifier silent for ten minutes: the check says why.
    add_alert(store, 1)  # a CRITICAL alert no channel delivered (none has a destination here)
    with store.engine.begin() as conn:
        conn.execute(
            heartbeats.update().values(beat_at=utcnow() - timedelta(minutes=10)).where(heartbeats.c.kind == "notifier")
        )
    assert notifier_status(store)[0] == "stale"
    assert main(["alerts", "check", *where]) == 1
    out = capsys.readouterr().out
    assert re.search(r"alert service: STALE: the notifier's last beat was 60\d s ago", out)
    assert "likely cause: alert service: STALE" in out


def test_agents_record_cpu_memory_and_their_slowest_events(night_template, tmp_path, capsys):
    store, where = night_store(night_template, tmp_path)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(agent_metrics)).mappings().all()
        sizes = dict(conn.execute(sa.select(events.c.event_id, events.c.payload)).all())
    assert rows
    for row in rows:
        assert row["cpu_ms"] is not None and row["cpu_ms"] > 0, row["agent"]
        assert row["memory_mb"] is not None and row["memory_mb"] > 50
        slowest = json.loads(row["slowest"])
        assert 1 <= len(slowest) <= 5
        assert [entry["latency_ms"] for entry in slowest] == sorted((e["latency_ms"] for e in slowest), reverse=True)
        for entry in slowest:
            assert entry["event_id"] in sizes and entry["size_bytes"] > 0
    main(["agents", "health", *where, "--minutes", "100000000"])
    out = capsys.readouterr().out
    assert "resources: CPU" in out and "MiB (worker RSS)" in out
    assert "slowest events (id, latency, packet size):" in out
    first = json.loads(rows[0]["slowest"])[0]["event_id"]
    assert first in out


def test_where_a_runbook_says_contact_someone_its_contacts_are_shown():
    config = load_config()
    contacts = config.sources.contacts()
    book = {name: config.contacts.describe(name) for name in config.contacts.names()}
    assert contacts["ztf"].startswith("ZTF") and "@" in contacts["rubin"] and "gcn.nasa.gov" in contacts["gcn"]
    lines = "\n".join(runbook_contacts(RUNBOOKS["high_queue_depth"], book, contacts))
    assert "Operations: #ops-events, escalation ops-lead@facility.org" in lines
    assert "Data Sources: dataops@source.org (Business hours)" in lines
    assert "Cloud Provider: support@cloud.com (24/7)" in lines
    for source, who in contacts.items():
        assert f"{source} source: {who}" in lines
    assert "ztf source:" in "\n".join(runbook_contacts(RUNBOOKS["error_rate"], book, contacts))
    latency = runbook_contacts(RUNBOOKS["latency"], book, contacts)
    assert not any("source:" in line for line in latency) and "Operations: #ops-events" in latency[0]
    critical = runbook_contacts(RUNBOOKS["critical_alert_not_sent"], book, contacts)
    assert critical == [
        "Operations: #ops-events, escalation ops-lead@facility.org",
        "Science: #sci-events, escalation sci-lead@facility.org",
    ]
