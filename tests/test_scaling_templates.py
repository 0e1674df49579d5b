"""The event processors' autoscaling (deploy/kubernetes/event-processor.yaml, KEDA) holds the guide's table as
config/scaling.yaml states it: every number, every subscription, and only metrics the product exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, generate_latest

from config import load_config
from config.scaling import load_scaling
from core import telemetry  # noqa: F401 - registers the product's metrics
from ops import scaling

REPO = Path(__file__).resolve().parents[1]


def documents() -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def exported_names() -> set[str]:
    """Every series name the product's /metrics serves, from its TYPE lines (a histogram as its _bucket, _sum and
    _count, a counter as its _total): labelled series have no sample until first observed."""
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",), "summary": ("_sum", "_count")}
    names = set()
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names |= {name} | {name + suffix for suffix in suffixes.get(kind, ())}
    return names


def test_the_scaled_object_holds_the_guides_table():
    rules, processors = load_scaling().rules, load_scaling().event_processor
    spec = documents()[("ScaledObject", "event-processor")]["spec"]
    assert spec["scaleTargetRef"]["name"] == "event-processor"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (processors.min_replicas, processors.max_replicas)
    down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == processors.scale_down_stabilization_s
    assert down["policies"][0]["value"] == processors.scale_down_max_percent

    modifiers = spec["advanced"]["scalingModifiers"]
    assert (modifiers["target"], modifiers["metricType"]) == ("1", "Value")
    formula = " ".join(modifiers["formula"].split())
    queue = "(queue_ztf + queue_rubin + queue_gcn"
    numbers = {
        "queue up": re.search(r"queue_gcn > (\d+)", formula),
        "queue down": re.search(r"queue_gcn < (\d+)", formula),
        "queue ratio": re.search(r"queue_gcn\) / (\d+)", formula),
        "cpu up": re.search(r"cpu > (\d+)", formula),
        "cpu down": re.search(r"cpu < (\d+)", formula),
        "cpu ratio": re.search(r"cpu / (\d+)", formula),
        "latency up": re.search(r"latency > (\d+)", formula),
        "latency down": re.search(r"latency < (\d+)", formula),
        "latency ratio": re.search(r"latency / (\d+)", formula),
    }
    assert all(numbers.values()), formula
    got = {name: float(match.group(1)) for name, match in numbers.items()}
    assert got == {
        "queue up": rules.queue_depth.up,
        "queue down": rules.queue_depth.down,
        "queue ratio": rules.queue_depth.up,
        "cpu up": rules.cpu_percent.up,
        "cpu down": rules.cpu_percent.down,
        "cpu ratio": rules.cpu_percent.up,
        "latency up": rules.latency_s.up,
        "latency down": rules.latency_s.down,
        "latency ratio": rules.latency_s.up,
    }
    # Up when any is over (||), down only when all are under (&&), by half: the rules of `scale advise`.
    assert f"{queue} > {rules.queue_depth.up:g} || cpu >" in formula
    assert f"{queue} < {rules.queue_depth.down:g} && cpu <" in formula and "? 0.5 : 1" in formula

    triggers = {trigger["name"]: trigger for trigger in spec["triggers"]}
    assert set(triggers) == {"queue_ztf", "queue_rubin", "queue_gcn", "latency", "cpu"}
    # Queue depth over ALL subscriptions: one Pub/Sub trigger per source, named as config/streaming.yaml does.
    pubsub = load_config().streaming.pubsub
    assert {
        name.removeprefix("queue_"): trigger["metadata"]["subscriptionName"]
        for name, trigger in triggers.items()
        if trigger["type"] == "gcp-pubsub"
    } == {source: pubsub.subscription(source) for source in pubsub.topics}
    assert float(triggers["latency"]["metadata"]["threshold"]) == rules.latency_s.up
    assert float(triggers["cpu"]["metadata"]["threshold"]) == rules.cpu_percent.up


def test_the_prometheus_queries_name_metrics_the_product_exports():
    spec = documents()[("ScaledObject", "event-processor")]["spec"]
    exported = exported_names()
    queries = [t["metadata"]["query"] for t in spec["triggers"] if t["type"] == "prometheus"]
    assert queries
    for query in queries:
        names = set(re.findall(r"\b((?:nightwatch|process)_[a-z_]+)\b", query))
        assert names and names <= exported, f"{query}: {names - exported} not exported"


def test_no_second_autoscaler_fights_keda_for_the_processors():
    assert ("HorizontalPodAutoscaler", "event-processor") not in documents()


def test_scale_advise_reads_the_same_lines():
    rules = load_scaling().rules
    at = scaling.Metrics(queue_depth=rules.queue_depth.up * 2.5, cpu_percent=50, latency_p50_s=40)
    assert scaling.advise(at, 4, 2)[0].recommended == 10
    stricter = rules.model_copy(update={"queue_depth": rules.queue_depth.model_copy(update={"up": 50_000})})
    assert scaling.advise(at, 4, 2, rules=stricter)[0].direction == "hold"
