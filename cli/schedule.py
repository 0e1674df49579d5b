"""`nightwatch scheduler`: the schedule of config/schedule.yaml run locally (APScheduler), its next runs, one
entry run now, the runs and their outcomes, and the daily checklist ticked by its owners."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cli.common import open_store, store_url
from config.schedule import load_schedule
from core.event import utcnow
from ops import schedule


def argv_for(args: argparse.Namespace) -> Any:
    """How each entry's command is run: its own words (`{output}` and `{date}` filled in) and the store and output
    of this scheduler; the configuration folder goes by $NIGHTWATCH_CONFIG_DIR (every command reads it)."""

    def build(job: schedule.Job) -> list[str]:
        words = [word.format(output=args.output, date=f"{utcnow():%Y-%m-%d}") for word in job.command]
        return [*words, "--output", args.output, "--db-url", store_url(args)]

    return build


def _run(args: argparse.Namespace, _beam: list[str]) -> int:
    config = load_schedule(args.config)
    store = open_store(args)
    try:
        action = args.action or "start"
        if action == "next":
            for when, job in schedule.next_runs(config, count=args.count):
                owner = f"  owner {job.owner}" if job.owner else ""
                print(f"{when:%Y-%m-%d %H:%M} UTC  {job.name:<48} {job.schedule:<16}{owner}")
            return 0
        if action == "runs":
            for row in schedule.recent_runs(store, args.limit):
                done = f"  done by {row['done_by']}" if row["done_by"] else ""
                print(f"{row['started_at']:%Y-%m-%d %H:%M:%S}  {row['job']:<48} {row['outcome']:<8}{done}")
            return 0
        if action == "checklist":
            for item in schedule.checklist_today(store, config):
                done = f"done by {item['done_by']} at {item['done_at']:%H:%M}" if item["done_by"] else "not done"
                print(f"{item['time']}  {item['task']:<34} owner {item['owner']:<9} check {item['check']:<12} {done}")
            return 0
        if action == "done":
            marked = schedule.mark_done(store, args.as_user, args.item, args.note)
            print(f"{args.item}: done by {marked['done_by']} at {marked['done_at']:%H:%M} UTC")
            return 0
        build = argv_for(args)
        if action == "run":
            job = next((j for j in schedule.jobs(config) if j.name == args.job), None)
            if job is None:
                raise ValueError(f"no scheduled entry {args.job!r}: see nightwatch scheduler next")
            run_id = schedule.execute(store, job, build(job), env=_env(args))
            row = next(r for r in schedule.recent_runs(store, 20) if r["run_id"] == run_id)
            print(f"{job.name}: {row['outcome']} (exit {row['exit_code']})\n{row['detail'] or ''}")
            return 0 if row["outcome"] == "ok" else 1
        runner = schedule.scheduler(config, store, build, env=_env(args))
        runner.start()
        print(f"nightwatch scheduler: {len(runner.get_jobs())} entries; next:", file=sys.stderr, flush=True)
        for when, job in schedule.next_runs(config)[:5]:
            print(f"  {when:%Y-%m-%d %H:%M} UTC  {job.name}", file=sys.stderr, flush=True)
        try:
            deadline = time.monotonic() + args.duration if args.duration else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            runner.shutdown(wait=True)
        return 0
    finally:
        store.close()


def _env(args: argparse.Namespace) -> dict[str, str]:
    return {"NIGHTWATCH_CONFIG_DIR": str(Path(args.config).resolve())} if args.config else {}


def _store_args(command: argparse.ArgumentParser, suppress: bool) -> None:
    """--output, --db-url and --config on the command and (not overriding it) on each action."""
    default = argparse.SUPPRESS if suppress else None
    command.add_argument(
        "--output", default=argparse.SUPPRESS if suppress else "out", help="output folder (default: out)"
    )
    command.add_argument(
        "--db-url", default=default, help="hot store URL (default: $NIGHTWATCH_DB_URL or OUTPUT/nightwatch.db)"
    )
    command.add_argument(
        "--config", default=default, help="folder of YAML configuration (default: the shipped config/)"
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    scheduler = commands.add_parser(
        "scheduler",
        help="run the schedule (config/schedule.yaml): backups, retention, index rebuild, access review, checklist",
        description="Without an action, runs every entry at its time until stopped (Ctrl-C) and records each run "
        "and its outcome in the hot store. The same schedule is in deploy/kubernetes/cronjobs.yaml.",
    )
    _store_args(scheduler, suppress=False)
    scheduler.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: never)")
    actions = scheduler.add_subparsers(dest="action", metavar="ACTION")
    upcoming = actions.add_parser("next", help="the next time each entry runs")
    upcoming.add_argument("--count", type=int, default=1, help="runs per entry (default 1)")
    one = actions.add_parser("run", help="run one entry now (a job or a checklist item's check) and record it")
    one.add_argument("job", help="the entry's name (nightwatch scheduler next)")
    runs = actions.add_parser("runs", help="the latest runs and their outcomes")
    runs.add_argument("--limit", type=int, default=30)
    actions.add_parser("checklist", help="today's checklist: each item's owner, its check and who did it")
    done = actions.add_parser("done", help="mark today's checklist item done (Operator or above; audited)")
    done.add_argument("item", help="the item (nightwatch scheduler checklist)")
    done.add_argument("--as", dest="as_user", required=True, help="your console user")
    done.add_argument("--note", help="what you found")
    for action in actions.choices.values():
        _store_args(action, suppress=True)
    scheduler.set_defaults(handler=_run)
