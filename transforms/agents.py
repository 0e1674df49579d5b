"""The agents step of the pipeline (Route -> Agents -> outputs) and the agent metrics.

Events are batched (`BatchElements`) and each batch is handed to every enabled agent concurrently on the
agents' thread pools, within each agent's budget (see `agents.calls`). A per-element blocking call would
serialise; `RequestResponseIO` with a timeout fails the whole pipeline; this does neither. Every event comes
out, enriched or marked skipped, timeout or error per agent; a failure of the step itself lets the events
through unenriched with the error recorded, so nothing is lost.

Each event-agent outcome is also an `AgentCall`; `AgentMetrics` counts them in fixed processing-time windows
per agent (calls, latency p50/p95, timeouts, errors, skips, breaker state) into the `agent_metrics` table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.transforms import window

from agents.base import AgentContext, enrichment
from agents.calls import AgentCall, AgentCaller, AgentPool
from agents.registry import build_agent
from config.settings import NightwatchConfig
from core import names, telemetry
from core.event import Event, utcnow
from core.isolate import isolate
from transforms.common import counter
from transforms.hotstore import HotStoreDoFn

log = logging.getLogger(__name__)
AGENT_CALLS = "agent_calls"


class AgentsDoFn(beam.DoFn):
    """Enriches batches of events with every enabled agent; agents and thread pools live from setup()."""

    def __init__(self, config: NightwatchConfig, db_url: str | None):
        # Only the slices it reads travel with the step: the agents' specs and the site.
        self._agents = config.agents
        self._site = config.sources.site
        self._db_url = db_url
        self._pool: AgentPool | None = None
        self._unavailable: dict[str, str] = {}

    def setup(self) -> None:
        context = AgentContext(db_url=self._db_url, site=self._site)
        callers = []
        for name, spec in self._agents.enabled().items():
            agent = build_agent(name, spec, context)
            try:
                agent.setup()
            except Exception as exc:  # noqa: BLE001 - an agent that cannot start is skipped, the events go on
                log.error("agent %s could not start: %s", name, exc)
                self._unavailable[name] = f"agent could not start: {type(exc).__name__}: {exc}"
                continue
            callers.append(AgentCaller(agent))
        self._pool = AgentPool(callers)

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def process(self, batch: list[Event]) -> Iterator[Any]:
        # One event the step chokes on fails only itself: the batch is split until it stands alone.
        done, failures = isolate(batch, self._pool.enrich)
        by_id = {event.event_id: event for events, _ in done for event in events}
        calls = [call for _, batch_calls in done for call in batch_calls]
        if failures:
            log.warning("agents step failed on %d of a batch of %d", len(failures), len(batch))
            counter(names.AGENTS_STEP_FAILED).inc(len(failures))
        for event, exc in failures:  # the event goes on without enrichment, with the reason
            reason = f"agents step failed: {type(exc).__name__}: {exc}"
            by_id[event.event_id] = self._marked(event, dict.fromkeys(self._agents.enabled(), reason))
        enriched = [by_id[event.event_id] for event in batch]
        if self._unavailable:
            enriched = [self._marked(event, self._unavailable) for event in enriched]
        for call in calls:
            counter(names.agent_call(call.agent, call.status)).inc()
            telemetry.observe_agent_call(call.agent, call.status, call.latency_ms)
            yield pvalue.TaggedOutput(AGENT_CALLS, call)
        yield from enriched

    def _marked(self, event: Event, reasons: dict[str, str]) -> Event:
        """Every named agent that would take this event recorded as skipped (critical) or error, with why."""
        marked = dict(event.enrichments)
        for name, reason in reasons.items():
            spec = self._agents.agents[name]
            if event.event_class in spec.classes and event.source in spec.sources and name not in marked:
                status = "skipped" if event.event_class == "critical" else "error"
                marked[name] = enrichment(status, 0.0, 0, reason=reason)
                counter(names.agent_call(name, status)).inc()
                telemetry.observe_agent_call(name, status, None)
        return event.model_copy(update={"enrichments": marked})


class RunAgents(beam.PTransform):
    """Events in; outputs `events` (every event, enriched) and `agent_calls` (one per event and agent)."""

    def __init__(self, config: NightwatchConfig, db_url: str | None, max_batch_size: int = 500):
        super().__init__()
        self._config = config
        self._db_url = db_url
        self._max_batch_size = max_batch_size

    def expand(self, events: beam.PCollection) -> pvalue.DoOutputsTuple:
        return (
            events
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self._max_batch_size)
            | "Enrich" >> beam.ParDo(AgentsDoFn(self._config, self._db_url)).with_outputs(AGENT_CALLS, main="events")
        )


class _KeepEnrichments(HotStoreDoFn):
    """Writes what the agents found to the stored events; the events go on (a failed write leaves them as they
    are: the alert is still notified, without the advice in the store)."""

    def process(self, batch: list[Event]) -> Iterator[Event]:
        try:
            self._store.set_enrichments(batch)
        except Exception as exc:  # noqa: BLE001 - the advice is extra: never hold an alert back for it
            log.warning("could not store the agents' findings for %d raised events: %s", len(batch), exc)
        yield from batch


class AdviseRaised(beam.PTransform):
    """Events an association (or any later decision) raised to an alert, given what the agents of their new class
    find, as alerts routed so from the start are: the follow-up agent's advice above all (visibility, priority,
    filters). Their stored JSON keeps it; the enriched events come out for notifying and publishing."""

    def __init__(self, config: NightwatchConfig, db_url: str):
        super().__init__()
        self._config = config
        self._db_url = db_url

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        enriched = events | "Agents" >> RunAgents(self._config, self._db_url)
        return (
            enriched.events
            | "BatchEnriched" >> beam.BatchElements(min_batch_size=1, max_batch_size=100)
            | "Keep" >> beam.ParDo(_KeepEnrichments(self._db_url))
        )


class AgentStats(beam.CombineFn):
    """Counts, latencies and the latest breaker state of one agent in one window."""

    def create_accumulator(self) -> dict[str, Any]:
        return {
            "calls": 0,
            "ok": 0,
            "timeout": 0,
            "error": 0,
            "skipped": 0,
            "over_budget": 0,
            "retried": 0,
            "latencies": [],
            "budget_ms": 0,
            "breaker": (0.0, "closed"),
            "cpu_ms": 0.0,
            "memory_mb": None,
            "slowest": [],
        }

    def add_input(self, acc: dict[str, Any], call: AgentCall, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        acc["calls"] += 1
        acc[call.status] += 1
        acc["over_budget"] += call.latency_ms > call.budget_ms
        acc["retried"] += call.attempts > 1
        acc["latencies"].append(call.latency_ms)
        acc["budget_ms"] = call.budget_ms
        acc["breaker"] = max(acc["breaker"], (call.at, call.breaker_state))
        acc["cpu_ms"] += call.cpu_ms
        if call.memory_mb is not None:
            acc["memory_mb"] = max(acc["memory_mb"] or 0.0, call.memory_mb)
        acc["slowest"] = _slowest([*acc["slowest"], _slow_entry(call)])
        return acc

    def merge_accumulators(self, accumulators: Any, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        merged = self.create_accumulator()
        for acc in accumulators:
            for key in ("calls", "ok", "timeout", "error", "skipped", "over_budget", "retried"):
                merged[key] += acc[key]
            merged["latencies"].extend(acc["latencies"])
            merged["budget_ms"] = max(merged["budget_ms"], acc["budget_ms"])
            merged["breaker"] = max(merged["breaker"], acc["breaker"])
            merged["cpu_ms"] += acc["cpu_ms"]
            if acc["memory_mb"] is not None:
                merged["memory_mb"] = max(merged["memory_mb"] or 0.0, acc["memory_mb"])
            merged["slowest"] = _slowest([*merged["slowest"], *acc["slowest"]])
        return merged

    def extract_output(self, acc: dict[str, Any], *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return acc


SLOWEST_KEPT = 5  # the window's slowest events per agent: the Agent Timeout runbook's "data causing slow processing"


def _slow_entry(call: AgentCall) -> dict[str, Any]:
    return {
        "event_id": call.event_id,
        "latency_ms": round(call.latency_ms, 1),
        "size_bytes": call.size_bytes,
        "status": call.status,
    }


def _slowest(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda entry: (-entry["latency_ms"], entry["event_id"]))[:SLOWEST_KEPT]


def agent_metrics_row(agent: str, stats: dict[str, Any], start: float, end: float, run_id: str) -> dict[str, Any]:
    latencies = np.asarray(stats["latencies"], dtype=float)
    p50, p95, top = (float(v) for v in np.percentile(latencies, [50, 95, 100])) if latencies.size else (None,) * 3
    return {
        "agent": agent,
        "window_start": datetime.fromtimestamp(start, timezone.utc),
        "run_id": run_id,
        "window_end": datetime.fromtimestamp(end, timezone.utc),
        "calls": stats["calls"],
        "ok": stats["ok"],
        "timeouts": stats["timeout"],
        "errors": stats["error"],
        "skips": stats["skipped"],
        "over_budget": stats["over_budget"],
        "retried": stats["retried"],
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_max_ms": top,
        "budget_ms": stats["budget_ms"],
        "breaker_state": stats["breaker"][1],
        "updated_at": utcnow(),
        "cpu_ms": round(stats.get("cpu_ms", 0.0), 3),
        "memory_mb": None if stats.get("memory_mb") is None else round(stats["memory_mb"], 1),
        "slowest": json.dumps(stats.get("slowest", [])),
    }


class _ToAgentRow(beam.DoFn):
    def __init__(self, run_id: str):
        self._run_id = run_id

    def process(self, keyed: tuple[str, dict[str, Any]], win: window.BoundedWindow = beam.DoFn.WindowParam):
        agent, stats = keyed
        yield agent_metrics_row(agent, stats, float(win.start), float(win.end), self._run_id)


class _WriteAgentMetrics(HotStoreDoFn):
    def process(self, row: dict[str, Any]) -> Iterator[dict[str, Any]]:
        try:
            self._store.upsert_agent_metrics([row])
        except Exception:  # noqa: BLE001 - metrics are derived; a failed write is counted, the events are safe
            counter(names.AGENT_METRICS_WRITE_FAILED).inc()
            return
        counter(names.AGENT_METRICS_WRITTEN).inc()
        yield row


def _at_call_time(call: AgentCall) -> window.TimestampedValue:
    return window.TimestampedValue(call, call.at)


class AgentMetrics(beam.PTransform):
    """AgentCalls in; one row per agent and processing-time window out, also upserted in the hot store."""

    def __init__(self, db_url: str, run_id: str, window_s: int):
        super().__init__()
        self._db_url = db_url
        self._run_id = run_id
        self._window_s = window_s

    def expand(self, calls: beam.PCollection) -> beam.PCollection:
        return (
            calls
            | "AtCallTime" >> beam.Map(_at_call_time)
            | "Windows" >> beam.WindowInto(window.FixedWindows(self._window_s))
            | "ByAgent" >> beam.Map(lambda call: (call.agent, call))
            | "Stats" >> beam.CombinePerKey(AgentStats())
            | "ToRow" >> beam.ParDo(_ToAgentRow(self._run_id))
            | "Write" >> beam.ParDo(_WriteAgentMetrics(self._db_url))
        )
