"""A simulated night that looks like a night (configured rates, a handful of alerts, panels in range) and the
guide's abnormal cases made on purpose with `--incident`."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from config.settings import CONFIG_DIR, load_config
from core.event import utcnow
from devtools.feed import night_plan
from devtools.simulator import generate_packets
from devtools.simulator.night import BACKLOG_PACKETS, INCIDENTS, NIGHT_CLASS_WEIGHTS, check_incident
from ops.health.evaluate import evaluate
from ops.health.report import ALERTS_PER_NIGHT, QUEUE_DEPTH
from store.hot import HotStore

ALERTING = ("critical", "significant")


def expected(config) -> dict[str, float]:
    return {name: spec.expected_rate_per_min for name, spec in config.sources.sources.items()}


def test_a_night_feed_runs_at_the_configured_rates_with_a_handful_of_alerts(config):
    rates = expected(config)
    plan = night_plan(rates, 60.0)
    assert plan.rate == pytest.approx(sum(rates.values()) / 60.0)
    assert plan.mix["gcn"] * plan.rate * 60 == pytest.approx(rates["gcn"])  # ~0.1 satellite triggers a minute
    assert plan.mix["rubin"] == pytest.approx(rates["rubin"] / sum(rates.values()))
    assert plan.bad_fraction == 0.0 and plan.night
    packets = list(generate_packets(600, seed=4, mix=plan.mix, class_weights=plan.class_weights))
    alerting = sum(packet.true_class in ALERTING for packet in packets)
    # The alerting share of the classes: a few minutes of night at 7,700 a minute make a handful, under 50.
    share = sum(
        plan.mix[source] * sum(weights.get(c, 0.0) for c in ALERTING) for source, weights in plan.class_weights.items()
    )
    assert 1 <= share * sum(rates.values()) * 2 < ALERTS_PER_NIGHT / 5
    # The design weights (tests, injection) alert far more often: what the demo used to publish.
    designed = list(generate_packets(600, seed=4, mix=plan.mix))
    assert sum(packet.true_class in ALERTING for packet in designed) > 10 * max(alerting, 1)


def test_each_incident_plans_its_abnormal_case(config):
    rates = expected(config)
    normal = night_plan(rates, 60.0)
    silent = night_plan(rates, 60.0, incident="silent-source")
    assert silent.mix["rubin"] == 0.0 and silent.rate == pytest.approx((rates["ztf"] + rates["gcn"]) / 60.0)
    bad = night_plan(rates, 60.0, incident="bad-data")
    assert bad.bad_source == "rubin" and bad.bad_fraction > 10 * 0.001  # over 10x the 0.1% error range
    backlog = night_plan(rates, 60.0, incident="backlog")
    assert backlog.burst_size == BACKLOG_PACKETS > QUEUE_DEPTH
    storm = night_plan(rates, 60.0, incident="alert-storm")
    stormy = Counter(
        p.true_class for p in generate_packets(300, seed=2, mix={"rubin": 1}, class_weights=storm.class_weights)
    )
    calm = Counter(
        p.true_class for p in generate_packets(300, seed=2, mix={"rubin": 1}, class_weights=normal.class_weights)
    )
    assert sum(stormy[c] for c in ALERTING) > 60 > sum(calm[c] for c in ALERTING)
    assert set(INCIDENTS) == {"silent-source", "bad-data", "backlog", "alert-storm"}
    with pytest.raises(ValueError, match="unknown incident"):
        check_incident("fire")
    assert NIGHT_CLASS_WEIGHTS["gcn"]  # satellites' notices as designed: real missions, real error regions


def scaled_config(tmp_path):
    """The shipped configuration with topics of its own, short windows and rates this shared machine can make."""
    from tests.test_streaming import streaming_config

    streaming_config(tmp_path)
    sources = yaml.safe_load((CONFIG_DIR / "sources.yaml").read_text())
    rates = {"ztf": 60.0, "rubin": 600.0, "gcn": 0.1}
    for name, rate in rates.items():
        sources["sources"][name]["expected_rate_per_min"] = rate
    (tmp_path / "config" / "sources.yaml").write_text(yaml.safe_dump(sources))
    return load_config(tmp_path / "config")


def night_on_the_stream(tmp_path, incident: str | None):
    from cli.main import main
    from tests.test_streaming import PROJECT

    config = scaled_config(tmp_path)
    out = tmp_path / "out"
    argv = ["stream", "--duration", "0", "--until-idle", "10", "--feed-duration", "60", "--emulator", "no"]
    argv += ["--night"] + (["--incident", incident] if incident else [])
    argv += ["--project", PROJECT, "--config", str(tmp_path / "config"), "--output", str(out)]
    main(argv)
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    report = evaluate(store, config, utcnow())
    store.close()
    return report


@pytest.mark.slow
@pytest.mark.parametrize(
    ("incident", "panel"),
    [(None, None), ("silent-source", "Event rate"), ("bad-data", "Error rate"), ("alert-storm", "Alert volume")],
)
def test_a_simulated_night_is_normal_and_each_incident_shows(emulator, tmp_path, incident, panel):
    report = night_on_the_stream(tmp_path, incident)
    abnormal = {p.name: p.display for p in report.panels if p.abnormal}
    if incident is None:
        assert report.severity is None, report.reason
        assert abnormal == {}
        assert report.panel("Alert volume").value < ALERTS_PER_NIGHT
    else:
        assert report.severity in ("SEV-2", "SEV-3"), report.reason
        assert panel in abnormal, abnormal


@pytest.fixture(scope="module")
def emulator():
    from devtools.pubsub import Emulator
    from tests.test_streaming import PROJECT

    with Emulator(PROJECT) as running:
        yield running
