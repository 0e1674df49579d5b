"""Worker status (High queue depth runbook, step 1): what each running job or worker records, and its reading.

Every streaming job, batch job and notification worker writes a heartbeat row (`heartbeats`, one per worker,
replaced every few seconds): state, processed so far, throughput, backlog it holds, errors. `nightwatch workers`
and the console's monitoring page read them; a beat older than `STALE_AFTER_S` means the worker is gone or hung.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from core.event import utcnow
from store.hot import HotStore
from store.schema import heartbeats

log = logging.getLogger(__name__)
BEAT_EVERY_S = 5.0
STALE_AFTER_S = 60.0  # twelve missed beats
NOTIFIER_STALE_AFTER_S = 120.0  # the notifier beats once a poll (10 s); two minutes silent is down


@dataclass(frozen=True)
class WorkerStatus:
    worker_id: str
    kind: str
    run_id: str | None
    host: str | None
    pid: int | None
    state: str
    started_at: datetime
    beat_at: datetime
    processed: int
    throughput_per_s: float | None
    backlog: int | None
    errors: int
    detail: dict[str, Any]
    age_s: float
    stale: bool

    @property
    def shown_state(self) -> str:
        if self.state == "stopped":
            return "stopped"
        return f"STALE ({self.state})" if self.stale else self.state


def worker_id(kind: str, run_id: str | None = None) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}" + (f":{run_id}" if run_id else "")


def record_beat(
    store: HotStore,
    worker: str,
    kind: str,
    *,
    state: str,
    started_at: datetime,
    processed: int,
    errors: int,
    throughput_per_s: float | None = None,
    backlog: int | None = None,
    run_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Replace this worker's heartbeat row."""
    row = {
        "kind": kind,
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "state": state,
        "started_at": started_at,
        "beat_at": utcnow(),
        "processed": int(processed),
        "throughput_per_s": throughput_per_s,
        "backlog": backlog,
        "errors": int(errors),
        "detail": json.dumps(detail or {}, sort_keys=True, default=str),
    }
    with store.engine.begin() as conn:
        updated = conn.execute(heartbeats.update().where(heartbeats.c.worker_id == worker).values(**row)).rowcount
        if not updated:
            conn.execute(heartbeats.insert().values(worker_id=worker, **row))


def workers(
    store: HotStore, now: datetime | None = None, kind: str | None = None, include_stopped_h: float = 24.0
) -> list[WorkerStatus]:
    """Every worker that beat in the last `include_stopped_h` hours, newest beat first, each judged stale or not."""
    now = now or utcnow()
    query = sa.select(heartbeats).where(heartbeats.c.beat_at >= now - timedelta(hours=include_stopped_h))
    if kind:
        query = query.where(heartbeats.c.kind == kind)
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(heartbeats.c.beat_at.desc())).mappings().all()
    found = []
    for row in rows:
        beat = _utc(row["beat_at"])
        age = (now - beat).total_seconds()
        limit = NOTIFIER_STALE_AFTER_S if row["kind"] == "notifier" else STALE_AFTER_S
        found.append(
            WorkerStatus(
                worker_id=row["worker_id"],
                kind=row["kind"],
                run_id=row["run_id"],
                host=row["host"],
                pid=row["pid"],
                state=row["state"],
                started_at=_utc(row["started_at"]),
                beat_at=beat,
                processed=row["processed"],
                throughput_per_s=row["throughput_per_s"],
                backlog=row["backlog"],
                errors=row["errors"],
                detail=json.loads(row["detail"] or "{}"),
                age_s=age,
                stale=row["state"] != "stopped" and age > limit,
            )
        )
    return found


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def notifier_status(store: HotStore, now: datetime | None = None) -> tuple[str, WorkerStatus | None]:
    """Is the notification delivery worker alive? ("ok" | "stale" | "stopped" | "never", its latest beat)."""
    found = workers(store, now, kind="notifier", include_stopped_h=24 * 365)
    if not found:
        return "never", None
    latest = found[0]
    if latest.state == "stopped":
        return "stopped", latest
    return ("stale" if latest.stale else "ok"), latest


def render(found: list[WorkerStatus]) -> str:
    if not found:
        return "no worker has recorded a heartbeat (no job, batch run or notifier has run against this store)"
    lines = [
        f"{'worker':<44} {'kind':<9} {'state':<18} {'last beat':>10} {'processed':>10} "
        f"{'per s':>7} {'backlog':>8} {'errors':>7}"
    ]
    for w in found:
        rate = "-" if w.throughput_per_s is None else f"{w.throughput_per_s:.1f}"
        backlog = "-" if w.backlog is None else str(w.backlog)
        lines.append(
            f"{w.worker_id[:44]:<44} {w.kind:<9} {w.shown_state:<18} {w.age_s:>8.0f}s {w.processed:>10} "
            f"{rate:>7} {backlog:>8} {w.errors:>7}"
        )
        if paused := w.detail.get("paused_sources"):
            lines.append(f"    intake paused: {', '.join(paused)}")
    stale = [w for w in found if w.stale]
    if stale:
        lines.append(
            f"{len(stale)} worker(s) stale (no beat for over {STALE_AFTER_S:.0f} s): restart them "
            "(kubectl rollout restart deployment event-processor, or relaunch the job)"
        )
    return "\n".join(lines)


class Heartbeat:
    """A thread that records a worker's beat every `every_s` from `sample()` (processed, errors, backlog, ...)."""

    def __init__(
        self,
        store_url: str,
        kind: str,
        sample: Callable[[], dict[str, Any]],
        run_id: str | None = None,
        every_s: float = BEAT_EVERY_S,
    ):
        self._url = store_url
        self.kind = kind
        self.run_id = run_id
        self.worker = worker_id(kind, run_id)
        self._sample = sample
        self._every = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = utcnow()
        self._started = time.monotonic()
        self._store: HotStore | None = None

    def beat(self, state: str | None = None) -> None:
        try:
            if self._store is None:
                self._store = HotStore(self._url)
            sample = dict(self._sample())
            processed = int(sample.pop("processed", 0))
            elapsed = max(time.monotonic() - self._started, 1e-6)
            record_beat(
                self._store,
                self.worker,
                self.kind,
                state=state or sample.pop("state", "running"),
                started_at=self._started_at,
                processed=processed,
                errors=int(sample.pop("errors", 0)),
                throughput_per_s=processed / elapsed,
                backlog=sample.pop("backlog", None),
                run_id=self.run_id,
                detail=sample,
            )
        except Exception as exc:  # noqa: BLE001 - a missed beat shows as stale; it never stops the job
            log.warning("heartbeat of %s not recorded: %s", self.worker, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.beat("stopped")
        if self._store is not None:
            self._store.close()
