"""Incident commands: `nightwatch watch` (the health watcher), `nightwatch incidents list|show|ack|note|tick|
resolve|review` (what responders do, through the same role-checked, audited code path as the console and the API)
and `nightwatch status show|publish` (the public status page).

`watch` evaluates health every `every_s` seconds (config/incidents.yaml), opens an incident at SEV-1/SEV-2 (add
SEV-3/SEV-4 with --levels), pages and escalates until acknowledged, resolves on recovery. `--at TIME` makes one
pass at that moment (a fake clock: try a night's escalations by hand)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any

from cli.common import open_store, store_options, when
from config.settings import SEVERITIES, load_config
from core.event import utcnow
from ops import incidents, statuspage
from ops.incidents.records import ACTIVE
from ops.incidents.watcher import describe
from ops.notify import Notifier
from ops.workers import record_beat, worker_id


def _levels(text: str | None) -> list[str] | None:
    if not text:
        return None
    levels = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = [level for level in levels if level not in SEVERITIES]
    if unknown:
        raise ValueError(f"--levels: unknown {unknown}: choose from {', '.join(SEVERITIES)}")
    return levels


def _watch(args: argparse.Namespace, _beam: list[str]) -> int:
    config = load_config(args.config)
    store = open_store(args)
    levels = _levels(args.levels)
    fixed = when(args.at, "--at") if args.at else None
    stop = threading.Event()
    if not (args.once or fixed) and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    me, began, passes = worker_id("watcher"), utcnow(), 0
    try:
        while True:
            now = fixed or utcnow()
            notifier = Notifier(store, config, clock=lambda at=now: at)
            try:
                result = incidents.watch_once(store, config, notifier, now, levels)
            finally:
                notifier.close()
            if args.json:
                print(json.dumps(describe(result)), flush=True)
            else:
                state = f"{result.incident.name} {result.incident.status}" if result.incident else "no incident"
                print(f"{now:%Y-%m-%d %H:%M:%S} UTC  {result.severity or 'normal'}  {state}", flush=True)
                for line in result.did:
                    print(f"  {line}", flush=True)
            # The watcher's heartbeat: `nightwatch workers` tells a silent watcher from a quiet night.
            passes += 1
            record_beat(store, me, "watcher", state="running", started_at=began, processed=passes, errors=0)
            if args.once or fixed or stop.wait(args.every or config.incidents.every_s):
                return 0
    finally:
        record_beat(store, me, "watcher", state="stopped", started_at=began, processed=passes, errors=0)
        store.close()


def _line(incident: incidents.Incident) -> str:
    latest = incident.latest
    said = f"  latest: {latest['at']:%H:%M} {latest['kind']}: {latest['text']}" if latest else ""
    opened = f"{incident.opened_at:%Y-%m-%d %H:%M} UTC"
    return f"{incident.name:<8} {incident.severity:<6} {incident.status:<13} {opened}  {incident.title}{said}"


def _show_text(incident: incidents.Incident) -> str:
    lines = [
        f"{incident.name} {incident.severity} ({incident.status}) opened {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC",
        f"reason: {incident.reason}",
    ]
    if incident.acknowledged_at:
        lines.append(f"acknowledged by {incident.acknowledged_by} at {incident.acknowledged_at:%H:%M:%S} UTC")
    if incident.resolved_at:
        lines.append(f"resolved by {incident.resolved_by} at {incident.resolved_at:%H:%M:%S} UTC")
    lines.append(f"procedure: {incident.procedure or '-'}")
    for item in incident.checklist:
        mark = f"[x] ({item['done_by']} {item['done_at']:%H:%M})" if item["done_at"] else "[ ]"
        lines.append(f"  {mark} {item['step']}. {item['text']}")
    lines.append("pages:")
    lines += [
        f"  step {page['step']} (+{page['after_min']} min) {page['role']}: {page['person']} on {page['channel']}: "
        f"{page['status']}"
        for page in incident.pages
    ] or ["  none"]
    lines.append("timeline:")
    lines += [
        f"  {line['at']:%Y-%m-%d %H:%M:%S} {line['kind']:<12} {line['actor']}: {line['text']}"
        for line in incident.timeline
    ]
    if incident.review:
        lines.append(f"review by {incident.reviewed_by}: {json.dumps(incident.review)}")
    return "\n".join(lines)


def _incidents(args: argparse.Namespace, _beam: list[str]) -> int:
    store = open_store(args)
    try:
        if args.action == "list":
            found = incidents.list_incidents(store, ACTIVE if args.active else args.status, args.limit)
            if args.json:
                print(json.dumps([incident.as_dict() for incident in found], indent=2, default=str))
            else:
                print("\n".join(_line(incident) for incident in found) or "no incidents")
            return 0
        if args.action == "show":
            incident = incidents.get_incident(store, args.incident_id)
            if incident is None:
                raise ValueError(f"no incident {args.incident_id}")
            print(json.dumps(incident.as_dict(), indent=2, default=str) if args.json else _show_text(incident))
            return 0
        incident = _act(args, store)
        print(_line(incident))
        return 0
    finally:
        store.close()


def _act(args: argparse.Namespace, store: Any) -> incidents.Incident:
    config = load_config(args.config)
    if args.action == "ack":
        return incidents.acknowledge(store, args.as_user, args.incident_id, args.note, config=config)
    if args.action == "note":
        return incidents.add_note(store, args.as_user, args.incident_id, args.text, public=args.public)
    if args.action == "tick":
        return incidents.tick(store, args.as_user, args.incident_id, args.step, args.note, done=not args.undo)
    if args.action == "resolve":
        return incidents.resolve(store, args.as_user, args.incident_id, args.note, config=config)
    return incidents.review(store, args.as_user, args.incident_id, args.summary, args.root_cause, args.follow_ups)


def _status(args: argparse.Namespace, _beam: list[str]) -> int:
    store = open_store(args)
    try:
        if args.action == "publish":
            statuspage.publish(store, args.as_user, args.text, args.incident)
            print("published on the status page")
            return 0
        content = statuspage.status(store, load_config(args.config))
    finally:
        store.close()
    if args.json:
        print(json.dumps(content, indent=2, default=str))
        return 0
    print(f"{content['overall']} (as a visitor of /status sees it)")
    for part in content["components"]:
        print(f"  {part['state']:<14} {part['name']}" + (f" ({part['note']})" if part["note"] else ""))
    for found in content["incidents"]:
        latest = found["latest_update"]
        print(f"{found['name']} {found['severity']} {found['status']}: {found['title']}")
        if latest:
            print(f"  latest update {latest['at']:%Y-%m-%d %H:%M} UTC: {latest['text']}")
    for notice in content["notices"]:
        print(f"notice {notice['at']:%Y-%m-%d %H:%M} UTC: {notice['text']}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    watch = commands.add_parser(
        "watch",
        help="the health watcher: open an incident at SEV-1/SEV-2, page, escalate until acknowledged, resolve",
        description=__doc__,
    )
    store_options(watch)
    watch.add_argument(
        "--levels", help="severities that open an incident (default: incidents.yaml open_at), e.g. SEV-1,SEV-2,SEV-3"
    )
    watch.add_argument(
        "--every", type=float, default=0, help="seconds between passes (default: incidents.yaml every_s)"
    )
    watch.add_argument("--once", action="store_true", help="one pass, then exit")
    watch.add_argument("--at", help="one pass as if it were this time (ISO 8601, UTC): a fake clock")
    watch.add_argument("--json", action="store_true", help="one JSON object per pass")
    watch.set_defaults(handler=_watch)

    group = commands.add_parser("incidents", help="incidents: list, show, ack, note, tick, resolve, review")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="incidents, newest first, with their latest update")
    listing.add_argument("--active", action="store_true", help="only those not resolved")
    listing.add_argument("--status", choices=("open", "acknowledged", "resolved"))
    listing.add_argument("--limit", type=int, default=50)
    show = actions.add_parser("show", help="one incident: checklist, pages, timeline, review")
    show.add_argument("incident_id", type=int)
    for command in (listing, show):
        store_options(command)
        command.add_argument("--json", action="store_true")
        command.set_defaults(handler=_incidents)

    def acting(name: str, text: str) -> argparse.ArgumentParser:
        command = actions.add_parser(name, help=text)
        command.add_argument("incident_id", type=int)
        store_options(command)
        command.add_argument("--as", dest="as_user", required=True, help="your console user (Operator or above)")
        command.set_defaults(handler=_incidents)
        return command

    acting("ack", "acknowledge: the ladder stops climbing").add_argument("--note", required=True)
    note = acting("note", "add a note to the timeline (--public: also the status page's latest update)")
    note.add_argument("text")
    note.add_argument("--public", action="store_true", help="publish it on the status page too (write it for visitors)")
    tick = acting("tick", "tick a step of the procedure's checklist (--undo to untick)")
    tick.add_argument("step", type=int)
    tick.add_argument("--note", default="done")
    tick.add_argument("--undo", action="store_true")
    acting("resolve", "resolve by hand (the watcher resolves on recovery)").add_argument("--note", required=True)
    review = acting("review", "the post-incident review of a resolved incident")
    review.add_argument("--summary", required=True)
    review.add_argument("--root-cause", required=True)
    review.add_argument("--follow-ups", default="")

    page = commands.add_parser("status", help="the public status page: show it, publish an update")
    page_actions = page.add_subparsers(dest="action", required=True, metavar="ACTION")
    show_page = page_actions.add_parser("show", help="what a visitor of /status sees now")
    show_page.add_argument("--json", action="store_true")
    publish = page_actions.add_parser("publish", help='publish an update ("Update status page")')
    publish.add_argument("text")
    publish.add_argument("--incident", type=int, help="as this incident's latest update")
    publish.add_argument("--as", dest="as_user", required=True, help="your console user (Operator or above)")
    for command in (show_page, publish):
        store_options(command)
        command.set_defaults(handler=_status)
