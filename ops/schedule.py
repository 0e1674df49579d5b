"""The schedule (config/schedule.yaml) as APScheduler triggers: what runs next, each run and its outcome in the
hot store, and the daily checklist's items ticked by their owners.

The scheduler runs each entry's `nightwatch` command in a process of its own (a failing or hanging job cannot
take the scheduler down) and records it in `schedule_runs`: started, then ok or failed with the exit code and
the command's last lines. A checklist item is a run too: its check runs at its time, and the person on duty then
marks it done (`done_by`, `done_at`), checked for the Operator role (access/) and audited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from access import accounts, audit
from config.schedule import ScheduleConfig
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import schedule_runs

DONE_PERMISSION = "run_operations"  # the checklist's owners: On-call and Ops team, both Operators or above
DETAIL_CHARS = 4000


@dataclass(frozen=True)
class Job:
    name: str
    kind: str  # job | checklist
    task: str
    command: tuple[str, ...]
    schedule: str  # as people read it: the cron line, or "every 15 min"
    owner: str | None
    trigger: Any  # an APScheduler trigger


def jobs(config: ScheduleConfig) -> list[Job]:
    """Every scheduled entry, the maintenance jobs then the checklist, with its trigger in the schedule's zone."""
    found = []
    for name, job in config.jobs.items():
        if job.cron:
            trigger, shown = CronTrigger.from_crontab(job.cron, timezone=config.timezone), job.cron
        else:
            trigger = IntervalTrigger(minutes=job.every_min, timezone=config.timezone)
            shown = f"every {job.every_min:g} min"
        found.append(Job(name, "job", job.what, tuple(job.command), shown, None, trigger))
    for item in config.checklist:
        trigger = CronTrigger.from_crontab(item.cron, timezone=config.timezone)
        found.append(Job(item.name, "checklist", item.task, tuple(item.command), item.cron, item.owner, trigger))
    return found


def next_runs(config: ScheduleConfig, now: datetime | None = None, count: int = 1) -> list[tuple[datetime, Job]]:
    """The next `count` times each entry fires after `now`, soonest first."""
    now = as_utc(now or utcnow())
    upcoming = []
    for job in jobs(config):
        previous, moment = None, now
        for _ in range(count):
            fire = job.trigger.get_next_fire_time(previous, moment)
            if fire is None:
                break
            upcoming.append((as_utc(fire), job))
            previous, moment = fire, fire + timedelta(seconds=1)
    return sorted(upcoming, key=lambda pair: pair[0])


# --- runs ----------------------------------------------------------------------------------------------------


def start_run(store: HotStore, job: Job, due_at: datetime) -> int:
    with store.engine.begin() as conn:
        return int(
            conn.execute(
                schedule_runs.insert().values(
                    job=job.name,
                    kind=job.kind,
                    task=job.task,
                    owner=job.owner,
                    due_at=as_utc(due_at),
                    started_at=utcnow(),
                    outcome="running",
                )
            ).inserted_primary_key[0]
        )


def finish_run(store: HotStore, run_id: int, exit_code: int, detail: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            schedule_runs.update()
            .where(schedule_runs.c.run_id == run_id)
            .values(
                finished_at=utcnow(),
                outcome="ok" if exit_code == 0 else "failed",
                exit_code=exit_code,
                detail=detail[-DETAIL_CHARS:],
            )
        )


def execute(
    store: HotStore,
    job: Job,
    argv: Sequence[str],
    due_at: datetime | None = None,
    timeout_s: float = 4 * 3600,
    env: dict[str, str] | None = None,
) -> int:
    """Run `nightwatch ARGV` for `job` in a process of its own and record the run; returns the run's id."""
    run_id = start_run(store, job, due_at or utcnow())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
        )
        code, detail = done.returncode, (done.stdout + done.stderr).strip()
    except subprocess.TimeoutExpired as exc:
        code, detail = 124, f"timed out after {timeout_s:.0f} s: {exc.stdout or ''}"
    except OSError as exc:
        code, detail = 127, f"could not start: {exc}"
    finish_run(store, run_id, code, detail)
    return run_id


def scheduler(
    config: ScheduleConfig,
    store: HotStore,
    argv_for: Callable[[Job], list[str]],
    blocking: bool = False,
    env: dict[str, str] | None = None,
) -> Any:
    """An APScheduler scheduler with every entry added (not started). One job at a time per entry; a run missed
    by more than its grace time (the scheduler was down) is skipped, and a late one coalesced into one run."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    kind = BlockingScheduler if blocking else BackgroundScheduler
    runner = kind(
        timezone=config.timezone, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
    )
    for job in jobs(config):
        runner.add_job(
            _fire,
            job.trigger,
            args=(store, job, argv_for, env),
            id=job.name,
            name=job.task,
        )
    return runner


def _fire(store: HotStore, job: Job, argv_for: Callable[[Job], list[str]], env: dict[str, str] | None) -> None:
    execute(store, job, argv_for(job), env=env)


def recent_runs(store: HotStore, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(schedule_runs).order_by(schedule_runs.c.started_at.desc(), schedule_runs.c.run_id.desc())
    if kind:
        query = query.where(schedule_runs.c.kind == kind)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query.limit(limit))]


def checklist_today(store: HotStore, config: ScheduleConfig, now: datetime | None = None) -> list[dict[str, Any]]:
    """Today's checklist (UTC day): each item, its owner, its latest run today (check outcome) and who ticked it."""
    now = as_utc(now or utcnow())
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(schedule_runs)
            .where((schedule_runs.c.kind == "checklist") & (schedule_runs.c.due_at >= day))
            .order_by(schedule_runs.c.due_at, schedule_runs.c.run_id)
        ).all()
    latest = {row.job: row for row in rows}
    items = []
    for item in config.checklist:
        row = latest.get(item.name)
        items.append(
            {
                "item": item.name,
                "time": item.time,
                "task": item.task,
                "owner": item.owner,
                "run_id": row.run_id if row else None,
                "check": row.outcome if row else "not run yet",
                "done_by": row.done_by if row else None,
                "done_at": row.done_at if row else None,
            }
        )
    return items


def mark_done(
    store: HotStore, actor: str, item: str, note: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Tick today's run of a checklist item as done by `actor` (Operator or above), audited. Its check must have
    run today (at its time, or by hand: `nightwatch scheduler run ITEM`)."""
    user = accounts.acting(store, actor, DONE_PERMISSION)
    now = as_utc(now or utcnow())
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with store.engine.begin() as conn:
        row = conn.execute(
            sa.select(schedule_runs)
            .where(
                (schedule_runs.c.job == item) & (schedule_runs.c.kind == "checklist") & (schedule_runs.c.due_at >= day)
            )
            .order_by(schedule_runs.c.due_at.desc(), schedule_runs.c.run_id.desc())
        ).first()
        if row is None:
            raise ValueError(f"{item}: no run of it today; run its check first (nightwatch scheduler run {item})")
        if row.done_by:
            raise ValueError(
                f"{item} was already marked done today by {row.done_by} at {as_utc(row.done_at):%H:%M} UTC"
            )
        conn.execute(
            schedule_runs.update()
            .where(schedule_runs.c.run_id == row.run_id)
            .values(done_by=user.name, done_at=now, note=note)
        )
        audit.audit(conn, user.name, "checklist.done", item, None, {"run_id": row.run_id, "note": note}, "schedule")
    return {"item": item, "run_id": row.run_id, "done_by": user.name, "done_at": now}
