"""Operations commands: the injection test on the real pipeline, health exit codes, scaling advice, the
deployment templates, the daily checklist and store upkeep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from cli.main import main
from config.scaling import load_scaling
from core.event import utcnow
from ops import inject, scaling
from store.hot import HotStore
from store.schema import events
from store.tiers import archive_entries, warm_entries
from tests.conftest import window_rows

REPO = Path(__file__).resolve().parent.parent


def store_at(folder: Path) -> HotStore:
    store = HotStore(f"sqlite:///{folder / 'nightwatch.db'}")
    store.ensure_schema()
    return store


def test_class_mix_and_plan():
    assert inject.parse_class_mix("critical=1,routine=3") == {"critical": 0.25, "routine": 0.75}
    with pytest.raises(ValueError, match="unknown class"):
        inject.parse_class_mix("urgent=1")
    pairs = inject.plan(40, inject.DEFAULT_CLASS_MIX, seed=1)
    counts = {cls: sum(1 for _, c in pairs if c == cls) for cls in inject.DEFAULT_CLASS_MIX}
    assert counts == {"critical": 4, "significant": 10, "interesting": 8, "routine": 10, "rejected": 8}
    assert all(source == "gcn" for source, cls in pairs if cls == "critical")  # only satellites make critical


def test_injection_measures_recall_on_the_real_pipeline(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["inject", "--count", "80", "--seed", "11", "--output", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] and report["severity"] is None
    assert report["injected"] == 80 and report["missing"] == [] and report["misclassified"] == []
    assert report["critical_recall"] == 1.0 and report["classes"]["critical"]["designed"] == 8
    assert all(score["recall"] == 1.0 and score["precision"] == 1.0 for score in report["classes"].values())
    assert report["latency_s"]["p50"] > 0
    store = store_at(out)
    with store.engine.connect() as conn:
        flagged = conn.execute(sa.select(sa.func.count()).select_from(events).where(events.c.injected)).scalar_one()
    assert flagged == 80
    # Injected events never enter the science tiers, and verify does not miss them there.
    assert not list(warm_entries(str(out / "warm"))) and not list(archive_entries(str(out / "archive")))
    assert main(["verify", "--output", str(out)]) == 0
    stored = inject.reports(store)
    assert [row["report_id"] for row in stored] == [report["report_id"]] and stored[0]["critical_recall"] == 1.0
    store.close()
    assert main(["inject", "--list", "--output", str(out)]) == 0
    assert report["report_id"] in capsys.readouterr().out


def test_a_critical_recall_drop_is_sev2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--simulate", "20", "--output", str(out)]) == 0
    # A bad threshold change: localised GRBs no longer count as critical.
    assert main(["thresholds", "set-rule", "grb_localised", "pos_error_deg", "<=", "0.0001", "--output", str(out)]) == 0
    capsys.readouterr()
    code = main(["inject", "--count", "40", "--seed", "3", "--mix", "critical=1,routine=1", "--output", str(out)])
    text = capsys.readouterr().out
    assert code == 1
    assert "FAIL: SEV-2" in text and "critical recall" in text and "< 99%" in text
    assert "misclassified" in text
    # The health check sees the stored report: SEV-2, and exits with 2.
    assert main(["health", "--output", str(out), "--json"]) == 2
    assert "critical recall" in json.loads(capsys.readouterr().out)["reason"]


@pytest.mark.parametrize(
    ("overrides", "severity", "code"),
    [
        ({}, None, 0),
        ({"rubin": {"latency_p50_s": 400.0}}, "SEV-3", 3),
        ({"rubin": {"dead_letters": 300}}, "SEV-2", 2),
    ],
)
def test_health_exit_code_is_the_severity(tmp_path, capsys, overrides, severity, code):
    store = store_at(tmp_path)
    store.upsert_metrics(window_rows(utcnow(), **overrides))
    store.close()
    assert main(["health", "--output", str(tmp_path), "--json"]) == code
    assert json.loads(capsys.readouterr().out)["severity"] == severity


def test_an_idle_pipeline_is_sev1(tmp_path, capsys):
    assert main(["health", "--output", str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "SEV-1" in text and "follow:" in text


def test_scale_advice_follows_the_guide():
    up = scaling.advise(scaling.Metrics(queue_depth=25_000, cpu_percent=50, latency_p50_s=40), 4, 2)
    assert (up[0].direction, up[0].recommended) == ("up", 10)  # x2.5 for a queue 2.5 times the line
    assert "queue depth 25,000 > 10,000" in up[0].reasons[0] and up[0].command.endswith("--replicas=10")
    down = scaling.advise(scaling.Metrics(queue_depth=200, cpu_percent=10, latency_p50_s=5), 8, 2)
    assert (down[0].direction, down[0].recommended) == ("down", 4)  # never more than half at once
    hold = scaling.advise(scaling.Metrics(queue_depth=200, cpu_percent=50, latency_p50_s=5), 8, 2)
    assert hold[0].direction == "hold"  # one metric in the band holds the rest
    slow = scaling.advise(scaling.Metrics(latency_p50_s=150), 3, 2)
    assert (slow[0].direction, slow[0].recommended) == ("up", 4)
    agents = scaling.advise(scaling.Metrics(agent_p95_share={"crossmatch": 1.6, "history": 0.5}), 2, 5)
    assert (agents[1].deployment, agents[1].direction, agents[1].recommended) == ("agent-pool", "up", 8)
    assert scaling.advise(scaling.Metrics(), 2, 2)[0].reasons == ["no metrics to act on"]


def test_scale_advise_reads_the_live_metrics(tmp_path, capsys):
    store = store_at(tmp_path)
    store.upsert_metrics(window_rows(utcnow(), ztf={"queue_depth": 30_000, "latency_p50_s": 200.0}))
    store.close()
    assert main(["scale", "advise", "--output", str(tmp_path), "--cpu", "50", "--processors", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["metrics"]["queue_depth"] == 30_000 and answer["metrics"]["latency_p50_s"] == 200.0
    processor = answer["advice"][0]
    assert processor["direction"] == "up" and processor["recommended"] == 9  # the queue at 3x the line
    assert processor["command"] == "kubectl scale deployment event-processor --replicas=9"


def test_deployment_templates_carry_the_guides_scaling_rules():
    documents = {}
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            documents[(document["kind"], document["metadata"]["name"])] = document
    for name in ("event-processor", "agent-pool"):
        assert ("Deployment", name) in documents
    # The processors scale with KEDA (tests/test_scaling_templates.py); the agent pool with an HPA.
    hpa = documents[("HorizontalPodAutoscaler", "agent-pool")]["spec"]
    cpu = next(metric for metric in hpa["metrics"] if metric["type"] == "Resource")
    assert cpu["resource"]["target"]["averageUtilization"] == load_scaling().rules.cpu_percent.up
    assert ("Service", "agent-pool") in documents
    flink = documents[("FlinkDeployment", "nightwatch-stream")]
    assert "nightwatch" in json.dumps(flink["spec"]["job"])


def test_checklists_report_for_the_handoff(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--simulate", "60", "--output", str(out)]) == 0
    capsys.readouterr()
    assert main(["checklist", "ops", "--output", str(out)]) == 1  # 1 corrupt packet in 60: 1.7% > 0.1%
    text = capsys.readouterr().out
    assert "ops checklist" in text and "[!] processing metrics: 59 events stored, 1 dead letters (1.67%)" in text
    # 09:00 reviews the guide's five panels over the night, each against its normal range.
    for panel in ("event rate", "processing latency", "queue depth", "error rate", "alert volume"):
        assert f"night panel: {panel}: " in text
    assert "[!] night panel: error rate: 1.67%" in text and "runbook: Common issue: processing errors" in text
    assert "[x] night panel: alert volume" in text
    assert main(["checklist", "evening", "--output", str(out)]) == 1  # no backup yet
    assert "no backup" in capsys.readouterr().out
    assert main(["backup", "--output", str(out)]) == 0
    capsys.readouterr()
    main(["checklist", "evening", "--output", str(out)])
    assert "[x] database backup" in capsys.readouterr().out
    main(["checklist", "night", "--output", str(out)])
    assert "[x] night processing started" in capsys.readouterr().out


def test_store_upkeep_on_sqlite_and_postgresql(tmp_path, postgres_url, capsys):
    assert main(["store", "upkeep", "--output", str(tmp_path)]) == 0
    assert "VACUUM" in capsys.readouterr().out
    assert main(["store", "upkeep", "--db-url", postgres_url]) == 0
    text = capsys.readouterr().out
    assert "VACUUM (ANALYZE)" in text and "REINDEX TABLE events" in text


def test_canary_beats_through_the_pipeline_and_stores_each_report(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["canary", "--through", "batch", "--every", "0", "--iterations", "2", "--count", "10", "--output", str(out)]
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " canary " in line]
    assert len(lines) == 2 and all("10/10 stored" in line and line.endswith("ok") for line in lines)
    store = store_at(out)
    reports = inject.reports(store)
    store.close()
    assert len(reports) == 2 and len({row["report_id"] for row in reports}) == 2  # a fresh set of events each beat
