"""Prometheus metrics of every long-running part, defined once (the official `prometheus_client`).

The streaming job, the API, the notifier, the agent server and the console each expose these on their own
`--metrics-port` (`serve(port)`), or the API on `/metrics`. Names follow Prometheus conventions: a `nightwatch_`
prefix, the unit in the name (`_seconds`, `_messages`), `_total` on counters, and labels whose values come from
bounded sets (sources, stages, agents, outcomes, channels, route templates: never an event id or a raw path).

`deploy/prometheus/rules.yml` and `deploy/grafana/nightwatch.json` use only the names defined here (a test
checks it: `metric_names()`). Nothing here imports Beam; the job's steps call the `observe_*` helpers.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("nightwatch.telemetry")

# Publish-to-sink and agent latencies: the guide's lines (30 s, 1 min, 2 min) are bucket bounds.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
AGENT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# ---- The streaming job ----
PACKETS_INGESTED = Counter("nightwatch_packets_ingested", "Packets let into the streaming job, before decoding")
EVENTS_RECEIVED = Counter(
    "nightwatch_events_received", "Events out of the decoder (good or bad), per source", ["source"]
)
EVENTS_STORED = Counter("nightwatch_events_stored", "Events written to the hot store's events table", ["source"])
DEAD_LETTERS = Counter("nightwatch_dead_letters", "Dead letters, per source and stage", ["source", "stage"])
ALERTS = Counter("nightwatch_alerts", "Alerts newly stored (CRITICAL/HIGH), per source", ["source"])
PROCESSING_LATENCY = Histogram(
    "nightwatch_processing_latency_seconds",
    "Latency from publish to sink of stored events, per source",
    ["source"],
    buckets=LATENCY_BUCKETS_S,
)
QUEUE_DEPTH = Gauge(
    "nightwatch_queue_depth_messages",
    "Messages published to a source's subscription and not yet received (as of the latest metrics window)",
    ["source", "subscription"],
)
EXPECTED_RATE = Gauge(
    "nightwatch_expected_event_rate_per_minute", "Expected event rate (config/sources.yaml)", ["source"]
)
ASSOCIATION_LINKS = Counter("nightwatch_association_links", "Multi-messenger associations newly linked")
AGENT_CALLS = Counter("nightwatch_agent_calls", "Event-agent outcomes, per agent and outcome", ["agent", "outcome"])
AGENT_LATENCY = Histogram(
    "nightwatch_agent_call_latency_seconds", "Agent latency per event, per agent", ["agent"], buckets=AGENT_BUCKETS_S
)
STREAM_LAST_PROGRESS = Gauge(
    "nightwatch_stream_last_progress_timestamp_seconds", "Unix time the streaming job last checked its progress"
)

# ---- The API ----
API_REQUESTS = Counter(
    "nightwatch_api_requests", "API requests by route template, method and status", ["route", "method", "status"]
)
API_LATENCY = Histogram(
    "nightwatch_api_request_duration_seconds",
    "API request duration by route template and method",
    ["route", "method"],
    buckets=HTTP_BUCKETS_S,
)

# ---- The notifier ----
DELIVERIES = Counter(
    "nightwatch_notify_deliveries", "Notification delivery attempts by channel and outcome", ["channel", "outcome"]
)
OUTBOX_PENDING = Gauge("nightwatch_notify_outbox_pending_messages", "Notifications waiting in the outbox")
NOTIFY_HEARTBEAT = Gauge("nightwatch_notify_last_loop_timestamp_seconds", "Unix time of the notifier's last loop")

# ---- The console ----
CONSOLE_LOGINS = Counter(
    "nightwatch_console_logins",
    "Console sign-ins by method (local, oidc) and outcome (success, failure)",
    ["method", "outcome"],
)

# ---- The agent server ----
AGENT_SERVER_REQUESTS = Counter(
    "nightwatch_agent_server_requests", "Agent server requests by agent and status", ["agent", "status"]
)

ALL = (
    PACKETS_INGESTED,
    EVENTS_RECEIVED,
    EVENTS_STORED,
    DEAD_LETTERS,
    ALERTS,
    PROCESSING_LATENCY,
    QUEUE_DEPTH,
    EXPECTED_RATE,
    ASSOCIATION_LINKS,
    AGENT_CALLS,
    AGENT_LATENCY,
    STREAM_LAST_PROGRESS,
    API_REQUESTS,
    API_LATENCY,
    DELIVERIES,
    OUTBOX_PENDING,
    NOTIFY_HEARTBEAT,
    CONSOLE_LOGINS,
    AGENT_SERVER_REQUESTS,
)

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def metric_names() -> set[str]:
    """Every series name the metrics above expose (counters with `_total`, histograms with `_bucket`, ...)."""
    found = set()
    for metric in ALL:
        for family in metric.describe():
            for suffix in _SUFFIXES[family.type]:
                found.add(family.name + suffix)
    return found


# ---- Observing from the job's steps ----
def observe_sample(source: str, kind: str, latency_s: float | None = None, stage: str | None = None) -> None:
    """One metrics sample of the streaming job (transforms/metrics.py `Sample`)."""
    if kind == "received":
        EVENTS_RECEIVED.labels(source).inc()
    elif kind == "stored":
        EVENTS_STORED.labels(source).inc()
        if latency_s is not None:
            PROCESSING_LATENCY.labels(source).observe(latency_s)
    elif kind == "dead_letter":
        DEAD_LETTERS.labels(source, stage or "unknown").inc()
    elif kind == "alert":
        ALERTS.labels(source).inc()


def observe_agent_call(agent: str, outcome: str, latency_ms: float | None) -> None:
    AGENT_CALLS.labels(agent, outcome).inc()
    if latency_ms is not None:
        AGENT_LATENCY.labels(agent).observe(latency_ms / 1000.0)


def observe_queue_depth(source: str, subscription: str, depth: int | None) -> None:
    if depth is not None:
        QUEUE_DEPTH.labels(source, subscription).set(depth)


def observe_stream_progress() -> None:
    STREAM_LAST_PROGRESS.set(time.time())


_served: dict[int, object] = {}


def serve(port: int | None, addr: str = "127.0.0.1") -> int | None:
    """Expose every metric on http://addr:port/metrics (once per process and port); None or 0 does nothing.

    Binds to 127.0.0.1 unless told otherwise (in a container, `NIGHTWATCH_METRICS_ADDR=0.0.0.0`).
    """
    if not port:
        return None
    if port not in _served:
        _served[port] = start_http_server(port, addr=addr)
        log.info("metrics on http://%s:%d/metrics", addr, port)
    return port


def serve_from_environment() -> int | None:
    """On a production runner's worker: serve on $NIGHTWATCH_METRICS_PORT if set (once per process).

    Several SDK worker processes may share a pod: the first takes the port, the others say so and go on without.
    """
    from config.environment import environment

    env = environment()
    try:
        return serve(env.metrics_port, env.metrics_addr)
    except OSError as exc:
        log.warning("metrics port %s is taken (%s): this worker process exports no metrics", env.metrics_port, exc)
        _served[env.metrics_port or 0] = None
        return None


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format and its content type (the API's `/metrics`)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
