"""`nightwatch workers` (High queue depth runbook, step 1: processing worker status) and `nightwatch intake
pause|resume|status` (Data recovery steps 2 and 6: stop incoming data, resume normal operations)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from cli.common import acting_as, identity_options, open_store, store_options
from config.base import SOURCES
from ops import intake
from ops.workers import render, workers


def _workers(args: argparse.Namespace, _beam: list[str]) -> int:
    store = open_store(args)
    try:
        found = workers(store, kind=args.kind, include_stopped_h=args.hours)
        if args.json:
            print(json.dumps([asdict(w) | {"shown_state": w.shown_state} for w in found], default=str, indent=2))
        else:
            print(render(found))
            print(intake.describe(store))
        return 1 if any(w.stale for w in found) else 0
    finally:
        store.close()


def _intake(args: argparse.Namespace, _beam: list[str]) -> int:
    store = open_store(args)
    try:
        if args.action in ("pause", "resume"):
            paused = args.action == "pause"
            row = intake.set_paused(
                store, acting_as(args, store, "run_operations"), paused, args.source, args.reason or ""
            )
            which = row.source if row.source != intake.ALL else "every source"
            if paused:
                print(
                    f"intake paused for {which} by {row.changed_by}: a running `nightwatch stream` stops pulling "
                    f"within {intake.POLL_S:.0f} s and finishes what is in flight; what is queued stays queued"
                )
            else:
                print(f"intake resumed for {which} by {row.changed_by}: the job pulls from where it stopped")
            print(intake.PRODUCTION)
        print(intake.describe(store))
        for row in intake.rows(store):
            print(
                f"  {row.source:<6} {'paused' if row.paused else 'pulling'}  since {row.changed_at:%Y-%m-%d %H:%M:%S}"
                f"  by {row.changed_by}" + (f"  ({row.reason})" if row.reason else "")
            )
        return 0
    finally:
        store.close()


def add_commands(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "workers",
        help="each running job and worker: last heartbeat, throughput, backlog, errors (exit 1 if one is stale)",
        description="High queue depth runbook, step 1 (check processing worker status): what every streaming job, "
        "batch job and notifier records every few seconds. STALE: no beat for a minute (two for the notifier).",
    )
    store_options(status, with_config=False)
    status.add_argument("--kind", choices=["stream", "batch", "notifier"], help="only workers of this kind")
    status.add_argument("--hours", type=float, default=24.0, help="workers that beat in the last H hours (24)")
    status.add_argument("--json", action="store_true", help="for machines")
    status.set_defaults(handler=_workers)

    gate = commands.add_parser(
        "intake",
        help="pause or resume a running streaming job's intake (Data recovery steps 2 and 6)",
        description="pause: the running `nightwatch stream` stops pulling (queued packets stay on the "
        "subscription), drains what is in flight and says so in `health`, `workers` and the console; resume: "
        "it pulls again from where it stopped. Operator or above, audited.",
    )
    actions = gate.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("pause", "resume"):
        command = actions.add_parser(action, help=f"{action} intake (every source, or --source)")
        store_options(command, with_config=False)
        command.add_argument("--source", choices=SOURCES, help="only this source (default: every source)")
        identity_options(command, "Operator or above")
        command.add_argument("--reason", help="why (goes into the audit log)")
        command.set_defaults(handler=_intake)
    show = actions.add_parser("status", help="which sources are paused, since when, by whom")
    store_options(show, with_config=False)
    show.set_defaults(handler=_intake)
