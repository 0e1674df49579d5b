"""Observability: Prometheus metrics scraped from a running stream job and API, the alert rules (promtool and
their thresholds against config/), the Grafana board (schema and metric names), structured JSON logs."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from access import accounts, apikeys
from config.runbooks import load_runbooks
from config.settings import load_config
from core import logs, telemetry
from core.event import utcnow
from devtools.pubsub import Emulator, OutgoingPacket, PacketPublisher, ensure_topics, free_port
from devtools.simulator import generate_packets
from ops.health import report
from store.hot import HotStore

REPO = Path(__file__).resolve().parents[1]
NIGHTWATCH = [sys.executable, "-m", "cli.main"]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = REPO / "deploy" / "prometheus" / "rules_test.yml"
BOARD = REPO / "deploy" / "grafana" / "nightwatch.json"
PROJECT = "nightwatch-tests"


# ---- Scraping ----
def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text endpoint."""
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of a sample name's values over the series that carry the given labels."""
    return sum(
        value
        for (sample, series), value in samples.items()
        if sample == name and all(dict(series).get(k) == v for k, v in labels.items())
    )


def wait_for(condition, timeout_s: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if found := condition():
                return found
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


# ---- Names ----
def test_metric_names_follow_prometheus_conventions():
    units = ("_total", "_seconds", "_messages", "_per_minute", "_bucket", "_sum", "_count", "_created")
    unbounded = {"event_id", "alert_id", "path", "url", "user", "run_id", "origin"}
    for metric in telemetry.ALL:
        for family in metric.describe():
            assert family.name.startswith("nightwatch_"), family.name
            assert re.fullmatch(r"[a-z_]+", family.name), family.name
            if family.type == "counter":
                assert not family.name.endswith("_total"), "the client adds _total to counters"
            else:
                assert family.name.endswith(("_seconds", "_messages", "_per_minute")), f"{family.name}: a unit"
        assert not set(metric._labelnames) & unbounded, f"{metric}: labels must be bounded"
    assert all(name.endswith(units) for name in telemetry.metric_names())
    assert "nightwatch_events_received_total" in telemetry.metric_names()
    assert "nightwatch_processing_latency_seconds_bucket" in telemetry.metric_names()


# ---- The alert rules ----
def rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def threshold(rule: dict) -> float:
    """The number an alert's expression compares against (every rule ends `<op> NUMBER`)."""
    match = re.search(r"(==|>=|<=|>|<)\s*([0-9.]+)\s*$", rule["expr"].strip())
    assert match, rule["expr"]
    return float(match.group(2))


def test_every_rule_has_a_severity_a_summary_and_a_runbook_that_exists():
    keys = set(load_runbooks().runbooks)
    for name, rule in rules().items():
        assert rule["labels"]["severity"] in ("SEV-1", "SEV-2", "SEV-3", "SEV-4"), name
        assert rule["annotations"]["summary"], name
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("https://") and url.rsplit("/", 1)[1] in keys, f"{name}: {url}"


def test_every_rule_threshold_is_the_one_in_config():
    config = load_config()
    found = rules()
    window_min = 15  # `nightwatch health` judges the panels over 15 minutes; so do the rules
    for expr in (rule["expr"] for rule in found.values()):
        gauge = "nightwatch_queue_depth_messages" in expr  # a gauge: its latest value
        assert gauge or "[15m]" in expr or "[12h]" in expr or "time()" in expr, expr
    # Event rate: ±20% of each source's expected rate, for the sources that expect enough events to judge.
    judged = {
        source: spec.expected_rate_per_min
        for source, spec in config.sources.sources.items()
        if spec.expected_rate_per_min * window_min >= report.MIN_EXPECTED_FOR_RATE
    }
    rated = {rule["labels"].get("source") for rule in found.values() if rule["labels"].get("panel") == "event_rate"}
    rated.discard(None)
    assert rated == set(judged), "one pair of rate rules per judged source"
    for source, expected in judged.items():
        low, high = (
            found[f"NightwatchEventRateLow{source.capitalize()}"],
            found[f"NightwatchEventRateHigh{source.capitalize()}"],
        )
        assert threshold(low) == pytest.approx(expected * (1 - report.RATE_TOLERANCE))
        assert threshold(high) == pytest.approx(expected * (1 + report.RATE_TOLERANCE))
        assert f'source="{source}"' in low["expr"] and "<" in low["expr"] and ">" in high["expr"]
    assert threshold(found["NightwatchProcessingLatencyHigh"]) == report.LATENCY_P50_S
    assert "histogram_quantile(0.5," in found["NightwatchProcessingLatencyHigh"]["expr"]
    assert threshold(found["NightwatchQueueDepthHigh"]) == report.QUEUE_DEPTH
    assert threshold(found["NightwatchQueueDepthCritical"]) == report.QUEUE_DEPTH * report.QUEUE_MAJOR_FACTOR
    assert threshold(found["NightwatchErrorRateHigh"]) == report.ERROR_RATE
    assert threshold(found["NightwatchErrorRateCritical"]) == pytest.approx(report.ERROR_RATE * report.MAJOR_FACTOR)
    assert threshold(found["NightwatchAlertVolumeHigh"]) == report.ALERTS_PER_NIGHT
    assert threshold(found["NightwatchNoEventsProcessing"]) == 0
    # The severities are the ones `nightwatch health` gives (ops/health/evaluate.py).
    severities = {name: rule["labels"]["severity"] for name, rule in found.items()}
    assert severities["NightwatchNoEventsProcessing"] == "SEV-1"
    assert severities["NightwatchQueueDepthCritical"] == severities["NightwatchErrorRateCritical"] == "SEV-2"
    assert severities["NightwatchQueueDepthHigh"] == severities["NightwatchErrorRateHigh"] == "SEV-3"
    assert severities["NightwatchProcessingLatencyHigh"] == "SEV-3"
    assert severities["NightwatchAlertVolumeHigh"] == "SEV-3"
    # Agents: p95 against each agent's budget (config/agents.yaml).
    for agent, spec in config.agents.agents.items():
        rule = next(r for r in found.values() if r["labels"].get("agent") == agent)
        assert f'agent="{agent}"' in rule["expr"] and "histogram_quantile(0.95," in rule["expr"]
        assert threshold(rule) == pytest.approx(spec.budget_ms / 1000.0)
    # The notifier: stalled after six polls.
    assert threshold(found["NightwatchNotifierStalled"]) == 6 * config.notifications.poll_s


def test_rules_name_only_metrics_the_code_defines():
    exprs = [rule["expr"] for rule in rules().values()]
    used = {name for expr in exprs for name in re.findall(r"\bnightwatch_[a-z_]+", expr)}
    assert used and used <= telemetry.metric_names(), used - telemetry.metric_names()


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make prometheus-deps` installs it (Debian's prometheus package)"
    return found


@pytest.mark.slow
def test_promtool_checks_the_rules():
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


@pytest.mark.slow
def test_promtool_unit_tests_cross_every_threshold():
    done = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    # Every rule is tested firing with its severity; those of the five panels also quiet inside their range.
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    panels = {name for name, rule in rules().items() if "panel" in rule["labels"]}
    assert set(rules()) <= fired, set(rules()) - fired
    assert panels <= quiet


# ---- The Grafana board ----
def test_grafana_board_is_a_dashboard_and_names_only_existing_metrics():
    board = json.loads(BOARD.read_text())
    assert board["title"] and board["uid"] and isinstance(board["schemaVersion"], int)
    assert isinstance(board["panels"], list) and board["panels"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    exprs = []
    for panel in board["panels"]:
        assert panel["type"] and panel["title"], panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"], panel["title"]
            exprs.append(target["expr"])
    used = {name for expr in exprs for name in re.findall(r"\bnightwatch_[a-z_]+", expr)}
    assert used <= telemetry.metric_names(), used - telemetry.metric_names()
    # Every identifier outside label matchers and by() lists is a metric, a PromQL function or a keyword.
    functions = {"sum", "rate", "increase", "histogram_quantile", "time", "by", "on", "le", "max"}
    for expr in exprs:
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([a-z_, ]*\)(?=\s*\()", "", expr)
        bare = re.sub(r"\b(by|on)\s*\([^)]*\)", "", bare)
        for word in re.findall(r"[a-z_][a-z0-9_]*", bare):
            assert word in functions or word in telemetry.metric_names(), f"{word!r} in {expr}"
    # The five panels of the guide with their normal-range lines as thresholds.
    titles = {panel["title"].split(" (")[0].split(":")[0]: panel for panel in board["panels"]}
    lines = {
        "Event rate": 0.2,
        "Processing latency p50": report.LATENCY_P50_S,
        "Queue depth per subscription": report.QUEUE_DEPTH,
        "Error rate": report.ERROR_RATE,
        "Alert volume, last 12 h": report.ALERTS_PER_NIGHT,
    }
    for title, line in lines.items():
        steps = titles[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert any(step["value"] == line and step["color"] == "red" for step in steps), title
    assert any("nightwatch_agent_calls_total" in expr for expr in exprs)
    assert any("by (source" in expr for expr in exprs)


# ---- Structured logs ----
def test_log_events_as_json_lines_and_as_text():
    record = logging.LogRecord("nightwatch.stream", logging.WARNING, __file__, 1, "dead letter", None, None)
    setattr(record, logs.FIELDS, {"event": "dead_letter", "run_id": "r1", "source": "ztf", "stage": "decode"})
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["event"] == "dead_letter" and line["stage"] == "decode" and line["level"] == "warning"
    assert line["ts"].endswith("Z") and line["logger"] == "nightwatch.stream" and line["message"] == "dead letter"
    text = logs.TextFormatter().format(record)
    assert "dead letter [event=dead_letter run_id=r1 source=ztf stage=decode]" in text


def test_breaker_changes_are_logged(caplog):
    from agents.calls import CircuitBreaker

    now = [0.0]
    breaker = CircuitBreaker(2, 10, clock=lambda: now[0], name="crossmatch")
    with caplog.at_level(logging.INFO, logger="nightwatch.agents"):
        breaker.failure()
        breaker.failure()
        now[0] = 11
        assert breaker.allow()
        breaker.success()
    changes = [getattr(r, logs.FIELDS) for r in caplog.records if getattr(r, logs.FIELDS, {}).get("event")]
    assert [(c["before"], c["after"]) for c in changes] == [("closed", "open"), ("half_open", "closed")]
    assert all(c["agent"] == "crossmatch" for c in changes)


def test_a_batch_run_logs_json_lines_with_run_id_and_dead_letters(tmp_path):
    done = subprocess.run(
        [
            *NIGHTWATCH,
            "run",
            "--simulate",
            "60",
            "--bad-fraction",
            "0.1",
            "--output",
            str(tmp_path),
            "--run-id",
            "logs-1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NIGHTWATCH_LOG_FORMAT": "json"},
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    by_event = Counter(line["event"] for line in lines)
    assert by_event["run_start"] == 1 and by_event["run_end"] == 1, done.stderr
    letters = [line for line in lines if line["event"] == "dead_letter"]
    assert letters and all(line["run_id"] == "logs-1" and line["stage"] and line["reason"] for line in letters)
    assert all(line["source"] in ("ztf", "rubin", "gcn") for line in letters)
    # What is not JSON on stderr is the command's own progress line (print), not a log record.
    assert [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("{")] == [
        f"nightwatch: processing 60 simulated packets -> {tmp_path}"
    ]


# ---- The API: scraped while it serves ----
def test_api_metrics_move_with_the_requests_it_served(tmp_path):
    store = HotStore(f"sqlite:///{tmp_path / 'nightwatch.db'}")
    store.ensure_schema()
    accounts.bootstrap(store, "admin", "a-long-enough-password")
    accounts.create_user_as_system(store, "test", "olga", "observer", "a-long-enough-password")
    token, _ = apikeys.create_key(store, "test", "olga", "observer")
    store.close()
    port, metrics_port = free_port(), free_port()
    server = subprocess.Popen(
        [*NIGHTWATCH, "api", "--port", str(port), "--metrics-port", str(metrics_port), "--output", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(base + "/v1/health", timeout=2).status_code == 200, 60, "the API")
        before = scrape(base + "/metrics")
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert requests.get(base + "/v1/alerts", headers=auth, timeout=10).status_code == 200
        for event_id in ("ztf:1", "ztf:2"):
            assert requests.get(base + f"/v1/events/{event_id}", headers=auth, timeout=10).status_code == 404
        assert requests.get(base + "/v1/alerts", timeout=10).status_code == 401
        assert requests.get(base + "/no/such/path", timeout=10).status_code == 404
        after = scrape(base + "/metrics")
        also = scrape(f"http://127.0.0.1:{metrics_port}/metrics")  # --metrics-port serves the same registry
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    requests_total = "nightwatch_api_requests_total"
    print(
        f"api scrape: /v1/alerts 200 +{moved(requests_total, route='/v1/alerts', status='200')}, "
        f"all +{moved(requests_total)}"
    )
    assert moved(requests_total, route="/v1/alerts", method="GET", status="200") == 3
    assert moved(requests_total, route="/v1/events/{event_id}", method="GET", status="404") == 2
    assert moved(requests_total, route="/v1/alerts", method="GET", status="401") == 1
    # The route template, never the raw path: two event ids, one series.
    routes = {dict(series)["route"] for (name, series) in after if name == requests_total}
    assert not any("ztf:" in route for route in routes)
    assert moved(requests_total, status="404") >= 3
    assert moved(requests_total, route="unmatched", status="404") == 1
    assert moved("nightwatch_api_request_duration_seconds_count", route="/v1/alerts") == 4
    assert total(also, requests_total, route="/v1/alerts", status="200") >= 3


# ---- The streaming job: scraped while it runs ----
@pytest.fixture(scope="module")
def emulator():
    with Emulator(PROJECT) as running:
        yield running


@pytest.mark.slow
def test_stream_metrics_move_with_the_traffic_sent(emulator, tmp_path):
    import uuid

    from config.settings import CONFIG_DIR

    settings = yaml.safe_load((CONFIG_DIR / "streaming.yaml").read_text())
    tag = uuid.uuid4().hex[:8]
    settings["pubsub"]["project"] = PROJECT
    settings["pubsub"]["topics"] = {source: f"nw-{tag}-{source}" for source in ("ztf", "rubin", "gcn")}
    settings["pubsub"]["alerts_topic"] = f"nw-{tag}-alerts"
    settings["windows"] = {"metrics_s": 5, "allowed_lateness_s": 30, "tier_batch_s": 2}
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "streaming.yaml").write_text(yaml.safe_dump(settings))
    config = load_config(folder)
    spec = config.streaming.pubsub
    ensure_topics(spec, PROJECT)
    output = tmp_path / "out"
    port = free_port()
    job = subprocess.Popen(
        [
            *NIGHTWATCH,
            "--log-json",
            "stream",
            "--duration",
            "0",
            "--rate",
            "0",
            "--config",
            str(folder),
            "--output",
            str(output),
            "--project",
            PROJECT,
            "--emulator",
            "no",
            "--metrics-port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(
            lambda: total(scrape(url), "nightwatch_stream_last_progress_timestamp_seconds") > 0, 120, "the job to run"
        )
        before = scrape(url)
        assert total(before, "nightwatch_events_received_total") == 0
        assert total(before, "nightwatch_expected_event_rate_per_minute", source="ztf") == 700
        now = utcnow()
        mix = {"ztf": 0.5, "rubin": 0.4, "gcn": 0.1}
        good = list(generate_packets(40, seed=21, mix=mix, start=now - timedelta(seconds=2), span_s=2))
        bad = list(generate_packets(4, seed=22, mix=mix, start=now, span_s=1, bad_fraction=1.0))
        sent = [OutgoingPacket(p.source, p.payload, p.event_time) for p in good + bad]
        publisher = PacketPublisher(spec, PROJECT, f"sqlite:///{output}/nightwatch.db")
        publisher.publish(sent)
        publisher.close()

        def counted():
            now = scrape(url)
            done = total(now, "nightwatch_events_stored_total") + total(now, "nightwatch_dead_letters_total")
            return now if done >= len(sent) and total(now, "nightwatch_dead_letters_total") >= len(bad) else None

        received = wait_for(counted, 120, "the packets to be counted")

        def with_queue_depth():
            now = scrape(url)
            return now if any(name == "nightwatch_queue_depth_messages" for name, _ in now) else None

        # Queue depth comes with the first metrics window to close (5 s windows here).
        with_depth = wait_for(with_queue_depth, 60, "a queue depth")
    finally:
        job.send_signal(signal.SIGINT)
        try:
            _, stderr = job.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            job.kill()
            _, stderr = job.communicate()

    by_source = Counter(p.source for p in sent)
    print(  # what `pytest -s` shows of the scrape
        f"stream scrape: sent {dict(by_source)} ({len(bad)} bad); "
        f"received {total(received, 'nightwatch_events_received_total')}, "
        f"stored {total(received, 'nightwatch_events_stored_total')}, "
        f"dead letters {total(received, 'nightwatch_dead_letters_total')}, "
        f"latency count {total(received, 'nightwatch_processing_latency_seconds_count')}, "
        f"agent calls {total(received, 'nightwatch_agent_calls_total')}"
    )
    assert total(received, "nightwatch_packets_ingested_total") == len(sent)
    assert total(received, "nightwatch_events_received_total") == len(sent)
    for source, count in by_source.items():
        assert total(received, "nightwatch_events_received_total", source=source) == count
    assert total(received, "nightwatch_dead_letters_total", stage="decode") == len(bad)
    stored = total(received, "nightwatch_events_stored_total")
    assert stored == len(sent) - len(bad)
    assert total(received, "nightwatch_processing_latency_seconds_count") == stored
    assert 0 < total(received, "nightwatch_processing_latency_seconds_sum") < 60 * stored
    assert total(received, "nightwatch_agent_calls_total", outcome="ok") > 0
    assert total(received, "nightwatch_agent_call_latency_seconds_count") > 0
    subscriptions = {dict(series).get("subscription") for n, series in with_depth if n.startswith("nightwatch_queue")}
    assert subscriptions <= {spec.subscription(source) for source in spec.topics}
    assert all(v >= 0 for (n, _), v in with_depth.items() if n == "nightwatch_queue_depth_messages")

    # The same run as JSON log lines: start, a dead letter per bad packet with its stage, drain, end.
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    events_seen = [line["event"] for line in lines]
    assert events_seen.count("run_start") == 1 and events_seen.count("run_end") == 1, stderr[-3000:]
    assert "drain" in events_seen
    run_id = next(line["run_id"] for line in lines if line["event"] == "run_start")
    letters = [line for line in lines if line["event"] == "dead_letter"]
    assert len(letters) == len(bad) and all(
        line["stage"] == "decode" and line["run_id"] == run_id and line["source"] for line in letters
    )


# ---- The notifier ----
def test_notifier_loop_sets_its_heartbeat_and_outbox_size(tmp_path):
    from cli.main import main

    before = time.time()
    assert main(["notify", "run", "--once", "--output", str(tmp_path)]) == 0
    assert telemetry.NOTIFY_HEARTBEAT._value.get() >= before
    assert telemetry.OUTBOX_PENDING._value.get() == 0


def test_environment_names_the_log_format_and_metrics_settings(monkeypatch):
    from config.environment import environment

    monkeypatch.setenv("NIGHTWATCH_LOG_FORMAT", "json")
    monkeypatch.setenv("NIGHTWATCH_METRICS_PORT", "9464")
    monkeypatch.setenv("NIGHTWATCH_METRICS_ADDR", "0.0.0.0")
    env = environment()
    assert (env.log_format, env.metrics_port, env.metrics_addr) == ("json", 9464, "0.0.0.0")
    monkeypatch.setenv("NIGHTWATCH_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError):
        environment()
