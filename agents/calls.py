"""Calling agents within budget: concurrency, retries with backoff, a circuit breaker, and the critical rule.

For each agent, the events it takes are cut into batches (critical events in batches of their own, so they
never wait behind a large batch) and run on the agent's thread pool. Every batch has a deadline: the moment
it was handed over plus the agent's budget. The caller waits for each batch until its deadline and no
longer; an event whose answer is not back proceeds without it. So:

- a critical event is tried once and never waits past the budget: a slow, failing or switched-off agent is
  `skipped` for it, with the reason;
- other events retry with exponential backoff while the budget lasts, then are marked `timeout` or `error`;
- after `failure_threshold` failures in a row the breaker opens: calls stop (events are `skipped`) until
  `reset_after_s` has passed, then one probe call is let through; its success closes the breaker;
- a batch (not critical) whose retries all failed with an error (not a timeout) is split in halves while the
  budget and the breaker allow (`core.isolate`): one event the agent chokes on fails only itself, with its
  own reason, and the others get their findings.

Nothing is lost: every event comes out, with one enrichment per agent that takes it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from agents.base import Agent, Finding, Status, enrichment
from core.event import Event
from core.isolate import isolate
from core.logs import log_event

log = logging.getLogger("nightwatch.agents")

CRITICAL = "critical"


class CircuitBreaker:
    """closed -> (threshold failures in a row) -> open -> (reset_after_s) -> half_open -> one probe -> ..."""

    def __init__(
        self,
        failure_threshold: int,
        reset_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ):
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened_count = 0

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == "open" and self._clock() - self._opened_at >= self.reset_after_s:
                return "half_open"
            return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        with self._lock:
            if self._state == "closed":
                return True
            if self._state == "open":
                if self._clock() - self._opened_at < self.reset_after_s:
                    return False
                self._state = "half_open"
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            before = self._state
            self._state, self._failures, self._probing = "closed", 0, False
        self._changed(before, "closed")

    def failure(self) -> None:
        with self._lock:
            before = self._state
            self._failures += 1
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                if self._state != "open":
                    self.opened_count += 1
                self._state, self._opened_at, self._probing = "open", self._clock(), False
            after, failures = self._state, self._failures
        self._changed(before, after, failures)

    def _changed(self, before: str, after: str, failures: int | None = None) -> None:
        if before != after:
            log_event(
                log,
                "breaker_change",
                f"agent {self.name or '?'}: circuit breaker {before} -> {after}",
                level=logging.WARNING if after == "open" else logging.INFO,
                agent=self.name or None,
                before=before,
                after=after,
                failures=failures,
            )


@dataclass(frozen=True)
class AgentCall:
    """One event's outcome with one agent: what the agent metrics are made of."""

    agent: str
    status: Status
    latency_ms: float
    attempts: int
    budget_ms: int
    breaker_state: str
    at: float  # unix seconds when the outcome was known
    event_class: str | None = None
    injected: bool = False
    # Agent Timeout runbook steps 2 and 5: the CPU time the call used (the batch's share per event), this
    # worker's memory (RSS, MiB), and which event it was and how big (its packet's bytes).
    cpu_ms: float = 0.0
    memory_mb: float | None = None
    event_id: str = ""
    size_bytes: int = 0


@dataclass
class _Outcome:
    status: Status
    findings: list[Finding] | None
    attempts: int
    reason: str
    cpu_ms: float = 0.0  # CPU time of the calling thread over every attempt
    # After a batch failed and was split: each event's own (status, reason), None for the events answered.
    per_event: list[tuple[Status, str] | None] | None = None


def memory_mb() -> float | None:
    """This process's resident memory in MiB (Linux /proc; peak RSS elsewhere), None if unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        except (ImportError, OSError):
            return None


class _Stop(Exception):
    """No more calls for this batch (budget spent, breaker open): the events not answered keep the batch's reason."""


class _Batch:
    def __init__(self, events: list[Event], critical: bool, started: float, deadline: float, future: Future):
        self.events = events
        self.critical = critical
        self.started = started
        self.deadline = deadline
        self.future = future


def _timed_out(exc: BaseException) -> bool:
    name = type(exc).__name__.lower()
    return isinstance(exc, TimeoutError) or "timeout" in name or "timedout" in name


class AgentCaller:
    """Calls one agent with its spec's budget, retries, concurrency and breaker. Thread-safe."""

    def __init__(self, agent: Agent, clock: Callable[[], float] = time.monotonic, sleep: Callable = time.sleep):
        self.agent = agent
        self.spec = agent.spec
        self._clock = clock
        self._sleep = sleep
        self.breaker = CircuitBreaker(
            self.spec.breaker.failure_threshold, self.spec.breaker.reset_after_s, clock, name=agent.name
        )
        self._pool = ThreadPoolExecutor(self.spec.concurrency, thread_name_prefix=f"agent-{agent.name}")

    def takes(self, event: Event) -> bool:
        return event.event_class in self.spec.classes and event.source in self.spec.sources

    def close(self) -> None:
        # A hung call must not hold the worker at teardown.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.agent.close()

    def submit(self, events: Sequence[Event]) -> list[_Batch]:
        """Start the calls for the events this agent takes; critical ones first, in batches of their own."""
        taken = [event for event in events if self.takes(event)]
        critical = [event for event in taken if event.event_class == CRITICAL]
        others = [event for event in taken if event.event_class != CRITICAL]
        size = self.spec.batch_size
        batches = []
        for group, is_critical in ((critical, True), (others, False)):
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                started = self._clock()
                deadline = started + self.spec.budget_ms / 1000.0
                future = self._pool.submit(self._attempts, chunk, deadline, is_critical)
                batches.append(_Batch(chunk, is_critical, started, deadline, future))
        return batches

    def collect(self, batch: _Batch) -> list[tuple[Event, dict[str, Any], AgentCall]]:
        """Wait for a batch until its deadline, not longer; one enrichment and one call record per event."""
        try:
            outcome = batch.future.result(timeout=max(0.0, batch.deadline - self._clock()))
        except FutureTimeout:
            batch.future.cancel()
            self.breaker.failure()  # a call still hanging at the deadline counts against the agent
            outcome = _Outcome("timeout", None, 1, f"no answer within the {self.spec.budget_ms} ms budget")
        except Exception as exc:  # noqa: BLE001 - an unexpected failure of the call machinery is an error
            outcome = _Outcome("error", None, 1, f"{type(exc).__name__}: {exc}")
        latency_ms = (self._clock() - batch.started) * 1000.0
        cpu_each = outcome.cpu_ms / max(1, len(batch.events))
        memory = memory_mb()
        status, reason = outcome.status, outcome.reason
        if status == "timeout":
            log_event(
                log,
                "agent_timeout",
                f"agent {self.agent.name}: {reason} ({len(batch.events)} events)",
                level=logging.WARNING,
                agent=self.agent.name,
                event_id=batch.events[0].event_id if len(batch.events) == 1 else None,
                event_ids=[event.event_id for event in batch.events[:10]],
                source=batch.events[0].source if batch.events else None,
                critical=batch.critical,
                latency_ms=round(latency_ms, 1),
            )
        if batch.critical and status != "ok":
            status, reason = "skipped", f"skipped for a critical event: {reason}"
        state = self.breaker.state
        results = []
        for i, event in enumerate(batch.events):
            finding = outcome.findings[i] if outcome.findings is not None else None
            own = outcome.per_event[i] if outcome.per_event is not None else None
            event_status, event_reason = own if own is not None else (status, reason)
            stored = enrichment(event_status, latency_ms, outcome.attempts, finding, event_reason)
            call = AgentCall(
                self.agent.name,
                event_status,
                latency_ms,
                outcome.attempts,
                self.spec.budget_ms,
                state,
                time.time(),
                event.event_class,
                event.injected,
                cpu_ms=cpu_each,
                memory_mb=memory,
                event_id=event.event_id,
                size_bytes=len(event.raw),
            )
            results.append((event, stored, call))
        return results

    def _attempts(self, events: list[Event], deadline: float, critical: bool) -> _Outcome:
        # A plain loop, not tenacity: the budget and breaker checks come *before* each call and end the batch
        # with an outcome, not an exception, so with tenacity (a stop on `upcoming_sleep` past the deadline,
        # `after=` for the breaker, the injected clock and `sleep=`) the same rules took more lines, not fewer.
        began = time.thread_time()
        outcome = self._attempt_loop(events, deadline, critical)
        outcome.cpu_ms = (time.thread_time() - began) * 1000.0
        return outcome

    def _attempt_loop(self, events: list[Event], deadline: float, critical: bool) -> _Outcome:
        attempts, pause = 0, self.spec.backoff_ms / 1000.0
        status: Status = "error"
        reason = ""
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return _Outcome("timeout", None, attempts, reason or "budget spent before the call")
            if not self.breaker.allow():
                return _Outcome("skipped", None, attempts, "circuit breaker open: the agent is failing")
            attempts += 1
            try:
                findings = self.agent.find(events, timeout_s=min(self.spec.timeout_ms / 1000.0, remaining))
                if len(findings) != len(events):
                    raise ValueError(f"answered {len(findings)} findings for {len(events)} events")
            except Exception as exc:  # noqa: BLE001 - any failure of an agent is its outcome, never ours
                self.breaker.failure()
                status = "timeout" if _timed_out(exc) else "error"
                reason = f"{type(exc).__name__}: {exc}"[:500]
            else:
                self.breaker.success()
                return _Outcome("ok", findings, attempts, "")
            if critical or attempts > self.spec.retries or self._clock() + pause >= deadline:
                if status == "error" and not critical and len(events) > 1:
                    return self._isolated(events, deadline, attempts, reason)
                return _Outcome(status, None, attempts, reason)
            self._sleep(pause)
            pause *= 2

    def _isolated(self, events: list[Event], deadline: float, attempts: int, reason: str) -> _Outcome:
        """The batch failed with an error: split it to find the events that fail alone; the others are answered."""
        calls = 0

        def find(chunk: list[Event]) -> list[tuple[int, Finding]]:
            nonlocal calls
            remaining = deadline - self._clock()
            if remaining <= 0 or not self.breaker.allow():
                raise _Stop(reason)
            calls += 1
            try:
                findings = self.agent.find(chunk, timeout_s=min(self.spec.timeout_ms / 1000.0, remaining))
                if len(findings) != len(chunk):
                    raise ValueError(f"answered {len(findings)} findings for {len(chunk)} events")
            except Exception:
                self.breaker.failure()
                raise
            self.breaker.success()
            return [(id(event), finding) for event, finding in zip(chunk, findings, strict=True)]

        answered, failures = isolate(events, find, fatal=lambda exc: isinstance(exc, _Stop) or _timed_out(exc))
        found = {key: finding for pairs in answered for key, finding in pairs}
        if not found:
            return _Outcome("error", None, attempts + calls, reason)
        failed: dict[int, tuple[Status, str]] = {}
        for event, exc in failures:
            failed[id(event)] = (
                ("error", reason) if isinstance(exc, _Stop) else ("error", f"{type(exc).__name__}: {exc}"[:500])
            )
        return _Outcome(
            "ok",
            [found.get(id(event)) for event in events],
            attempts + calls,
            "",
            per_event=[failed.get(id(event)) for event in events],
        )


class AgentPool:
    """Every enabled agent, called concurrently for a batch of events."""

    def __init__(self, callers: Sequence[AgentCaller]):
        self.callers = list(callers)

    def enrich(self, events: Sequence[Event]) -> tuple[list[Event], list[AgentCall]]:
        pending = [(caller, caller.submit(events)) for caller in self.callers]
        found: dict[str, dict[str, dict[str, Any]]] = {}
        calls: list[AgentCall] = []
        for caller, batches in pending:
            for batch in batches:
                for event, stored, call in caller.collect(batch):
                    found.setdefault(event.event_id, {})[caller.agent.name] = stored
                    calls.append(call)
        enriched = [
            event.model_copy(update={"enrichments": {**event.enrichments, **found[event.event_id]}})
            if event.event_id in found
            else event
            for event in events
        ]
        return enriched, calls

    def close(self) -> None:
        for caller in self.callers:
            caller.close()
