"""The guide's daily checklist as commands: each check a line, pass or fail, for the on-call handoff.

| 06:00 | Review overnight alerts        | morning |
| 06:00 | Check system health dashboard  | morning |
| 09:00 | Review processing metrics      | ops     |  (the five panels over the night, and dead letters)
| 18:00 | Pre-night health check         | evening |
| 22:00 | Confirm night processing started | night |
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.event import as_utc, utcnow
from core.night import observing_night
from store.hot import HotStore
from store.schema import alerts, dead_letters, events, runs


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ChecklistResult:
    which: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def text(self) -> str:
        lines = [f"Nightwatch {self.which} checklist, {utcnow():%Y-%m-%d %H:%M} UTC"]
        lines += [f"[{'x' if check.ok else '!'}] {check.name}: {check.detail}" for check in self.checks]
        lines.append("all checks passed" if self.ok else "ATTENTION: some checks failed (marked !)")
        return "\n".join(lines)


def _count(conn: Any, query: Any) -> int:
    return int(conn.execute(query).scalar_one())


def overnight_alerts(store: HotStore, hours: int = 12) -> Check:
    since = utcnow() - timedelta(hours=hours)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(alerts.c.level, alerts.c.status, sa.func.count())
            .where(alerts.c.created_at >= since, alerts.c.injected.is_(False))
            .group_by(alerts.c.level, alerts.c.status)
        ).all()
    open_critical = sum(n for level, status, n in rows if level == "CRITICAL" and status == "open")
    summary = ", ".join(f"{level} {status} {n}" for level, status, n in rows) or "none"
    return Check(
        f"overnight alerts (last {hours} h)",
        open_critical == 0,
        summary + (f"; {open_critical} CRITICAL still open" if open_critical else ""),
    )


def health_check(store: HotStore, config: Any) -> Check:
    from ops.health import evaluate

    report = evaluate(store, config, utcnow())
    return Check(
        "system health", report.severity in (None, "SEV-4"), f"{report.severity or 'no incident'}: {report.reason}"
    )


def processing_metrics(store: HotStore, hours: int = 24) -> Check:
    since = utcnow() - timedelta(hours=hours)
    with store.engine.connect() as conn:
        stored = _count(conn, sa.select(sa.func.count()).select_from(events).where(events.c.stored_at >= since))
        letters = _count(
            conn,
            sa.select(sa.func.count())
            .select_from(dead_letters)
            .where((dead_letters.c.stored_at >= since) & dead_letters.c.resolved_at.is_(None)),
        )
        last_run = conn.execute(sa.select(runs.c.run_id, runs.c.finished_at).order_by(runs.c.started_at.desc())).first()
    received = stored + letters
    rate = letters / received if received else 0.0
    detail = f"{stored} events stored, {letters} dead letters ({rate:.2%}) in {hours} h"
    if last_run is not None:
        detail += f"; last run {last_run.run_id}"
    return Check("processing metrics", rate < 0.001 or received == 0, detail)


def night_start(now: datetime, timezone_name: str) -> datetime:
    """When the observing night holding `now` began: local noon of its date."""
    night = observing_night(now, timezone_name)
    return datetime.fromisoformat(night).replace(hour=12, tzinfo=ZoneInfo(timezone_name)).astimezone(timezone.utc)


def night_panels(store: HotStore, config: Any, now: datetime | None = None) -> list[Check]:
    """09:00 "review processing metrics": the five panels of the guide, each over the whole night so far (from the
    night's local noon), against its normal range. A panel with no data does not fail; one out of range does."""
    from ops.health import evaluate

    now = as_utc(now or utcnow())
    start = night_start(now, config.sources.site.timezone)
    report = evaluate(store, config, now, window=now - start, history=now - start)
    checks = []
    for panel in report.panels:
        shown = panel.display or "no data"
        detail = f"{shown} (normal {panel.normal}), night of {start:%Y-%m-%d %H:%M} UTC on, {panel.status}"
        if panel.abnormal:
            detail += f"; action: {panel.action}; runbook: {panel.runbook.title}"
        checks.append(Check(f"night panel: {panel.name.lower()}", not panel.abnormal, detail))
    return checks


def disk_space(output: str, minimum_gb: float = 5.0) -> Check:
    folder = Path(output)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free / 1e9
    return Check("disk space for tonight", free >= minimum_gb, f"{free:.1f} GB free under {folder}")


def backup_age(output: str, max_hours: float = 24.0) -> Check:
    backups = sorted(Path(output, "backups").glob("*.json"), key=lambda path: path.stat().st_mtime)
    if not backups:
        return Check("database backup", False, f"no backup under {output}/backups: run `nightwatch backup`")
    age = (utcnow().timestamp() - backups[-1].stat().st_mtime) / 3600
    return Check("database backup", age <= max_hours, f"latest {backups[-1].name}, {age:.1f} h old")


def night_started(store: HotStore, minutes: int = 30) -> Check:
    since = utcnow() - timedelta(minutes=minutes)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.source, sa.func.count(), sa.func.max(events.c.stored_at))
            .where(events.c.stored_at >= since, events.c.injected.is_(False))
            .group_by(events.c.source)
        ).all()
    if not rows:
        return Check("night processing started", False, f"no events stored in the last {minutes} min")
    latest = max(as_utc(row[2]) for row in rows)
    return Check(
        "night processing started",
        True,
        ", ".join(f"{src} {n}" for src, n, _ in rows) + f" in {minutes} min; latest {latest:%H:%M:%S} UTC",
    )


def run_checklist(which: str, store: HotStore, config: Any, output: str) -> ChecklistResult:
    result = ChecklistResult(which)
    if which == "morning":
        result.checks += [overnight_alerts(store), health_check(store, config)]
    elif which == "ops":
        result.checks += [processing_metrics(store), *night_panels(store, config)]
    elif which == "evening":
        result.checks += [health_check(store, config), disk_space(output), backup_age(output)]
    elif which == "night":
        result.checks += [night_started(store), health_check(store, config)]
    else:
        raise ValueError(f"unknown checklist {which!r}")
    return result
