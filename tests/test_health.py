"""The monitoring panels and severity (ops/health.py): from a real batch run's events, from stream metrics
windows, agent metrics and an injection report; each severity level reached by the finding that defines it."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest
import sqlalchemy as sa

from config.settings import load_config
from core.event import as_utc, utcnow
from core.night import observing_night
from ops import health
from store.hot import HotStore
from store.schema import dead_letters, events, injection_reports
from tests.conftest import copy_night, window_rows

CONFIG = load_config()
EXPECTED = {name: spec.expected_rate_per_min for name, spec in CONFIG.sources.sources.items()}


@pytest.fixture
def batch(night_template, tmp_path):  # noqa: F811
    store = HotStore(f"sqlite:///{copy_night(night_template, tmp_path / 'out')}/nightwatch.db")
    store.ensure_schema()
    yield store
    store.close()


def latest_stored(store: HotStore):
    with store.engine.connect() as conn:
        return as_utc(conn.execute(sa.select(sa.func.max(events.c.stored_at))).scalar())


def test_batch_run_panels_are_computed_from_events(batch):
    now = latest_stored(batch) + timedelta(seconds=30)
    report = health.evaluate(batch, CONFIG, now)
    assert report.basis == "stored events" and not report.stale
    assert [panel.name for panel in report.panels] == [
        "Event rate",
        "Processing latency",
        "Queue depth",
        "Error rate",
        "Alert volume",
    ]
    with batch.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.received_time, events.c.stored_at)).all()
        letters = conn.execute(sa.select(sa.func.count()).select_from(dead_letters)).scalar()
    # Processing latency is stored_at - received_time, its median over the window.
    latency = statistics.median((as_utc(s) - as_utc(r)).total_seconds() for r, s in rows)
    assert report.panel("Processing latency").value == pytest.approx(latency)
    assert 0 < latency < 60 and report.panel("Processing latency").status == "ok"
    errors = report.panel("Error rate")
    assert errors.value == pytest.approx(letters / (len(rows) + letters)) and letters > 0
    assert errors.status == "bad"  # the simulator's 1% corrupt packets are over the guide's 0.1%
    volume = report.panel("Alert volume")
    nights = batch.alert_volume_by_night()
    tonight = observing_night(now, CONFIG.sources.site.timezone)  # tonight at the site, not the data's last night
    assert volume.value == nights.get(tonight, 0) and sum(volume.by_source.values()) == volume.value
    assert volume.display.endswith(f"(night {tonight})")
    other = min(nights)
    chosen = health.evaluate(batch, CONFIG, now, night=other).panel("Alert volume")
    assert chosen.value == nights[other] and chosen.display.endswith(f"(night {other})")
    assert report.panel("Queue depth").status == "n/a"  # batch input: no queue
    rate = report.panel("Event rate")
    assert set(rate.by_source) == set(EXPECTED) and rate.source_status["gcn"] == "n/a"
    assert rate.value == pytest.approx(sum(v for v in rate.by_source.values()))
    assert all(panel.series for panel in report.panels if panel.name != "Queue depth")
    # The simulator's share of corrupt packets: 10x the normal range or more is major, less is minor (and then
    # a few hundred simulated packets, far below the expected ~7,700 a minute, are named too).
    if errors.value >= 0.01:
        assert report.severity == "SEV-2" and "error rate" in report.reason
    else:
        assert report.severity == "SEV-3" and "event rate" in report.reason and "error rate" in report.reason
    assert report.panel("Error rate").runbook.title == "Common issue: processing errors"


def test_nothing_processed_recently_is_sev1_with_the_last_figures(batch):
    latest = latest_stored(batch)
    report = health.evaluate(batch, CONFIG, latest + timedelta(hours=2))
    assert report.stale and report.severity == "SEV-1"
    assert "no events processing" in report.reason and "2.0 h ago" in report.reason
    assert report.window_end >= latest and report.panel("Processing latency").value is not None
    assert report.runbook.title == "SEV-1: System Down"


def test_an_empty_store_is_sev1(store):
    report = health.evaluate(store, CONFIG, utcnow())
    assert report.severity == "SEV-1" and "store is empty" in report.reason and report.basis == "no data"
    assert report.agents.message == "no agent metrics yet"


def test_normal_stream_windows_mean_no_incident(store):
    now = utcnow()
    store.upsert_metrics(window_rows(now))
    report = health.evaluate(store, CONFIG, now)
    assert report.basis == "stream metrics"
    assert report.severity is None, report.reason
    assert report.panel("Event rate").status == "ok"
    assert report.panel("Processing latency").value == pytest.approx(2.0)


def test_high_latency_is_sev3(store):
    now = utcnow()
    store.upsert_metrics(window_rows(now, rubin={"latency_p50_s": 400.0}))
    report = health.evaluate(store, CONFIG, now)
    assert report.severity == "SEV-3" and "processing latency" in report.reason
    assert report.panel("Processing latency").source_status["rubin"] == "bad"


def test_error_rate_ten_times_the_range_is_sev2(store):
    now = utcnow()
    store.upsert_metrics(window_rows(now, rubin={"dead_letters": 300}))
    report = health.evaluate(store, CONFIG, now)
    assert report.severity == "SEV-2" and "error rate" in report.reason
    assert report.runbook.title == "SEV-2: Major Degradation"


def test_a_deep_queue_is_sev2(store):
    now = utcnow()
    store.upsert_metrics(window_rows(now))
    received = sum(row["received"] for row in window_rows(now) if row["source"] == "rubin")
    store.add_published("rubin", received + 60_000)
    report = health.evaluate(store, CONFIG, now)
    assert report.panel("Queue depth").value == 60_000
    assert report.severity == "SEV-2" and "queue depth" in report.reason


def test_low_critical_recall_in_the_injection_report_is_sev2(store):
    now = utcnow()
    store.upsert_metrics(window_rows(now))
    # The latest report injected no critical event (recall None): the latest measured recall still counts.
    reports = [("yesterday", 1.0, now - timedelta(days=1)), ("today", 0.97, now), ("later", None, now)]
    with store.engine.begin() as conn:  # the table `nightwatch inject` writes (ops/inject.py)
        for report_id, recall, created in reports:
            conn.execute(
                injection_reports.insert().values(
                    report_id=report_id,
                    created_at=created,
                    through="batch",
                    injected=100,
                    critical_recall=recall,
                    passed=recall is None or recall >= 0.99,
                    severity=None,
                    report="{}",
                )
            )
    report = health.evaluate(store, CONFIG, now)
    assert report.severity == "SEV-2" and "critical recall 97.0%" in report.reason


def test_agent_over_budget_or_open_breaker_is_sev3(store):
    now = utcnow()
    store.upsert_metrics(window_rows(now))
    base = {
        "window_start": now - timedelta(minutes=2),
        "run_id": "r",
        "window_end": now - timedelta(minutes=1),
        "calls": 10,
        "ok": 10,
        "timeouts": 0,
        "errors": 0,
        "skips": 0,
        "over_budget": 0,
        "retried": 0,
        "latency_p50_ms": 50.0,
        "latency_p95_ms": 80.0,
        "latency_max_ms": 90.0,
        "budget_ms": 300,
        "breaker_state": "closed",
        "updated_at": now,
    }
    rows = [
        {**base, "agent": "crossmatch"},
        {**base, "agent": "history", "timeouts": 6, "latency_p95_ms": 900.0, "breaker_state": "open"},
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.Table("agent_metrics", sa.MetaData(), autoload_with=store.engine).insert(), rows)
    report = health.evaluate(store, CONFIG, now)
    assert report.agents.status == {"crossmatch": "ok", "history": "bad"}
    assert report.severity == "SEV-3" and "agent history" in report.reason
    assert report.agents.runbook.title == "Runbook: Agent Timeout"


def test_alert_volume_over_range_alone_is_sev3_with_review_thresholds():
    panels = [
        health.Panel(name, 0.0, "", "ok", "", health.RUNBOOKS["latency"])
        for name in ("Event rate", "Processing latency", "Queue depth", "Error rate")
    ]
    panels.append(health.Panel("Alert volume", 61.0, "< 50 a night", "bad", "", health.RUNBOOKS["alert_volume"]))
    agents = health.AgentHealth([], [], {}, "no agent metrics yet")
    level, reason, runbook = health.severity(panels, agents, False, 7700.0, None, "")
    assert level == "SEV-3" and "review thresholds" in reason
    assert runbook == health.RUNBOOKS["alert_volume"] and "Review thresholds" in runbook.steps[0]


def test_sev4_comes_from_the_consoles_own_faults_recorded_when_they_happen(store):
    from ops.health.faults import RENDER_ERROR, STALE_PANEL, recent_faults, record_fault

    now = utcnow()
    store.upsert_metrics(window_rows(now))
    assert health.evaluate(store, CONFIG, now).severity is None
    record_fault(store, "Alerts", RENDER_ERROR, "KeyError: 'title'", "ops")
    record_fault(store, "Monitoring", STALE_PANEL, "OperationalError: database is locked")
    report = health.evaluate(store, CONFIG, utcnow())
    assert report.severity == "SEV-4" and report.runbook == health.RUNBOOKS["sev4"]
    assert "console page Alerts failed to render" in report.reason and "KeyError" in report.reason
    assert "console page Monitoring showed stale figures" in report.reason
    # An hour on, the glitch no longer counts.
    assert recent_faults(store, utcnow() + timedelta(hours=1, minutes=1)) == []
