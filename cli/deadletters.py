"""`nightwatch dead-letters list|show|stats|redrive`: read the dead letters without SQL (the error-rate runbook's
"read their stage and reason"), and re-drive them after a fix.

list, show and stats read (store/deadletters.py); redrive pushes the kept raw bytes back through the batch
pipeline (pipeline/redrive.py), acts as an Operator (`--as USER` or an API key) and is audited.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

from cli.common import acting_as, identity_options, open_store, outputs, store_options
from config.settings import load_config
from store import deadletters


def _filter(args: argparse.Namespace, timezone: str) -> deadletters.LetterFilter:
    return deadletters.LetterFilter(
        source=args.source,
        stage=args.stage,
        reason=args.reason,
        night=args.night,
        status=getattr(args, "status", "open"),
        timezone=timezone,
    )


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}Z" if value else "-"


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=lambda value: value.isoformat() if hasattr(value, "isoformat") else str(value))


def _dead_letters(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    timezone = config.sources.site.timezone
    store = open_store(args)
    try:
        if args.action == "list":
            return _list(args, store, timezone)
        if args.action == "show":
            return _show(args, store, timezone)
        if args.action == "stats":
            return _stats(args, store, timezone)
        return _redrive(args, store, config, timezone)
    finally:
        store.close()


def _list(args: argparse.Namespace, store: Any, timezone: str) -> int:
    rows = deadletters.list_letters(store, _filter(args, timezone), args.limit)
    if args.json:
        print(_json(rows))
        return 0
    for row in rows:
        print(
            f"{row['dead_letter_id']:<36} {row['status']:<8} {row['source']:<6} {row['stage']:<12} "
            f"night {row['night']}  {_when(row['stored_at'])}  {row['payload_bytes']:>8} B  {row['reason'][:100]}"
        )
    print(f"{len(rows)} letters{' (more: raise --limit)' if len(rows) == args.limit else ''}")
    return 0


def _show(args: argparse.Namespace, store: Any, timezone: str) -> int:
    row = deadletters.get_letter(store, args.id, timezone)
    if row is None:
        raise ValueError(f"no dead letter {args.id!r} (see nightwatch dead-letters list)")
    payload = row.pop("payload")
    if args.raw:
        sys.stdout.buffer.write(payload)
        return 0
    for name in ("dead_letter_id", "status", "source", "stage", "night", "origin", "event_id", "injected"):
        print(f"{name:<14} {row[name]}")
    for name in ("received_time", "stored_at", "resolved_at"):
        print(f"{name:<14} {_when(row[name])}")
    print(f"{'reason':<14} {row['reason']}")
    print(f"{'bytes':<14} {len(payload)} (write them out with --raw > FILE)")
    print(f"{'first bytes':<14} {base64.b16encode(payload[:48]).decode().lower()}")
    return 0


def _stats(args: argparse.Namespace, store: Any, timezone: str) -> int:
    by = tuple(part.strip() for part in args.by.split(",") if part.strip())
    rows = deadletters.stats(store, _filter(args, timezone), by)
    if args.json:
        print(_json(rows))
        return 0
    widths = {name: min(70, max([len(name)] + [len(str(row[name])) for row in rows])) for name in by}
    print("  ".join(f"{name:<{widths[name]}}" for name in by) + "  count  last stored")
    for row in rows:
        cells = "  ".join(f"{str(row[name])[: widths[name]]:<{widths[name]}}" for name in by)
        print(f"{cells}  {row['count']:>5}  {_when(row['last'])}")
    print(f"{sum(row['count'] for row in rows)} letters in {len(rows)} groups")
    return 0


def _redrive(args: argparse.Namespace, store: Any, config: Any, timezone: str) -> int:
    # Beam is imported only by the command that runs a job: the others start fast.
    from pipeline.redrive import redrive

    if not (args.stage or args.reason or args.source or args.night or args.all):
        raise ValueError("say which letters: --stage, --reason, --source, --night, or --all")
    actor = acting_as(args, store, "run_operations")
    report = redrive(store, outputs(args), config, _filter(args, timezone), actor, args.dry_run)
    print(report.table())
    if args.dry_run:
        print("dry run: nothing re-driven; run again without --dry-run to push them through the pipeline")
    return 0 if report.summary is None or report.summary.ok else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    letters = commands.add_parser(
        "dead-letters",
        help="dead letters: list, show, stats (by source, stage, reason, night), and redrive after a fix",
        description="Triage of what could not be processed, and re-drive through the pipeline once fixed.",
    )
    actions = letters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the letters, newest first")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    show = actions.add_parser("show", help="one letter: where, why, and its bytes")
    show.add_argument("id", help="the letter's id (dl:STAGE:...)")
    show.add_argument("--raw", action="store_true", help="write the raw bytes to stdout")
    stats = actions.add_parser("stats", help="counts by source, stage, reason (its kind) and night")
    stats.add_argument("--by", default="source,stage,reason,night", help="group by (default: all four)")
    redrive = actions.add_parser(
        "redrive",
        help="push the kept raw bytes of open letters back through the pipeline (Operator; audited)",
        description="After a fix (a decoder update, a relaxed limit in --config): re-drives the open letters "
        "selected, then reports re-driven, now stored, still dead. Idempotent.",
    )
    redrive.add_argument("--dry-run", action="store_true", help="say what would happen (decodes on this machine)")
    redrive.add_argument("--all", action="store_true", help="every open letter")
    identity_options(redrive, "Operator or above")
    for name, action in actions.choices.items():
        store_options(action)
        if name in ("list", "stats", "redrive"):
            action.add_argument("--source", choices=["ztf", "rubin", "gcn"])
            action.add_argument("--stage", help="decode, filter, classify, route, sink:events, sink:warm, ...")
            action.add_argument("--reason", help="a part of the reason (case-insensitive)")
            action.add_argument("--night", help="the observing night received in (YYYY-MM-DD, site time)")
        if name in ("list", "stats"):
            action.add_argument("--status", choices=deadletters.STATUSES, default="open", help="default: open")
            action.add_argument("--json", action="store_true", help="print JSON")
    letters.set_defaults(handler=_dead_letters)
