"""Data recovery and keeping: `nightwatch replay` (re-read raw packets to recover missing events), `backup` and
`restore` (the hot store, checked against a manifest), `retention` (the guide's table) and `verify` (every tier
holds the same events).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from access.audit import record
from cli.common import (
    acting_as,
    deprecated_alias,
    identity_options,
    open_store,
    outputs,
    store_options,
    store_url,
    utc_stamp,
    when,
)
from config.settings import load_config
from core.decoders.common import parse_iso_utc
from ops.backup import backup, export_model_versions, restore
from ops.retention import apply_retention
from ops.verify import report, unresolved_write_failures, verify
from store.hot import HotStore


def _replay(args: argparse.Namespace, beam_args: list[str]) -> int:
    # Beam is imported only by the commands that run a job: the others start fast.
    from pipeline.batch import run
    from pipeline.io.replay import ReplayRange, archived_ids, stored_ids

    where = outputs(args)
    span = ReplayRange(parse_iso_utc(args.start, "--start"), parse_iso_utc(args.end, "--end"), args.source)
    if span.end <= span.start:
        raise ValueError("--end must be after --start")
    if args.source_kind == "files" and not args.input:
        raise ValueError("--from files needs --input GLOB")
    store = open_store(args)
    before = stored_ids(store, span)
    period = f"{span.start.isoformat()} to {span.end.isoformat()}" + (f", source {span.source}" if span.source else "")
    if args.source_kind == "archive":
        expected = archived_ids(where.archive_root, span)
        print(
            f"archive holds {len(expected)} events from {period}; the hot store holds {len(before & expected)} "
            f"of them; {len(expected - before)} missing"
        )
    if args.dry_run:
        print("dry run: nothing replayed")
        return 0
    actor = acting_as(args, store, "run_operations")
    run_id = args.run_id or "replay-" + utc_stamp()
    argv = [f"--output={args.output}", f"--run_id={run_id}"]
    if args.db_url:
        argv.append(f"--db_url={args.db_url}")
    if args.config:
        argv.append(f"--config_dir={args.config}")
    if args.source_kind == "archive":
        argv += [
            f"--replay_archive={where.archive_root}",
            f"--replay_start={args.start}",
            f"--replay_end={args.end}",
        ] + ([f"--replay_source={args.source}"] if args.source else [])
    else:
        argv.append(f"--input={args.input}")
    summary = run(argv + beam_args)
    after = stored_ids(store, span)
    recovered = sorted(after - before)
    record(store, actor, "data.replay", run_id, {"stored": len(before)}, {"stored": len(after)}, period)
    store.close()
    print(summary.table())
    print(
        f"reconciliation for {period}: before {len(before)} events, after {len(after)}; recovered "
        f"{len(recovered)}{' (e.g. ' + ', '.join(recovered[:3]) + ')' if recovered else ''}; "
        f"already present {summary.count('events.already_stored')} (stored once, alerts not raised again)"
    )
    return 0 if summary.ok else 1


def _backup(args: argparse.Namespace, _beam_args: list[str]) -> int:
    if args.command == "backup":
        store = open_store(args)
        folder = Path(args.to or Path(args.output) / "backups")
        path = backup(store, folder)
        models = export_model_versions(store, folder / "models")
        store.close()
        print(f"backup written to {path} (manifest {path}.json)")
        print(f"model versions: {len(models)} new in {folder / 'models'} (every version is kept)")
        return 0
    url = store_url(args)
    current = open_store(args)
    try:
        actor = acting_as(args, current, "run_operations")
    finally:
        current.close()
    mismatches = restore(url, Path(args.path))
    restored = HotStore(url)
    record(restored, actor, "data.restore", url, None, {"backup": str(args.path), "ok": not mismatches}, "cli")
    restored.close()
    if mismatches:
        for table, (expected, found) in mismatches.items():
            print(f"MISMATCH {table}: {expected}, {found}")
        return 1
    print(f"restored {args.path} into {url}; every table matches the backup's counts and checksums")
    return 0


def _retention(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    where = outputs(args)
    store = open_store(args)
    now = when(args.now, "--now")
    actor = None if args.dry_run else acting_as(args, store, "run_operations")
    done = apply_retention(store, where.warm_root, where.archive_root, config.retention, now, args.dry_run)
    if actor:
        record(store, actor, "data.retention", "retention", None, {"as_of": now.isoformat()}, "cli")
    store.close()
    print(f"retention as of {now.isoformat()}{' (dry run: nothing changed)' if args.dry_run else ''}")
    print(done.table())
    return 0


def _verify(args: argparse.Namespace, _beam_args: list[str]) -> int:
    where = outputs(args)
    store = open_store(args)
    now = parse_iso_utc(args.now, "--now") if args.now else None
    checks = verify(store, where.warm_root, where.archive_root, load_config(args.config).retention, now)
    unresolved = unresolved_write_failures(store)
    store.close()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "source": c.source,
                        "night": c.night,
                        "hot": len(c.hot),
                        "warm": len(c.warm),
                        "archive": len(c.archive),
                        "missing": c.missing,
                    }
                    for c in checks
                ],
                indent=2,
            )
        )
    else:
        print(report(checks))
        if unresolved:
            print(
                f"{unresolved} dead letters from failed writes not stored since: "
                "fix the cause and run again over the same input"
            )
    return 0 if all(check.ok for check in checks) else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    replay = commands.add_parser(
        "replay",
        help="re-read raw packets (archive or files) through the pipeline to recover missing events",
        description="Idempotent: what is already stored is not stored, alerted or published again. Prints what "
        "was missing before and what is present after. Unknown options are passed to Beam.",
    )
    replay.add_argument("--from", dest="source_kind", choices=["archive", "files"], required=True)
    replay.add_argument("--start", required=True, help="events from this time (ISO 8601, UTC if no zone)")
    replay.add_argument("--end", required=True, help="events before this time")
    replay.add_argument("--source", choices=["ztf", "rubin", "gcn"], help="only this source")
    # The pipeline's own spellings of the same options (pipeline/options.py).
    deprecated_alias(replay, "--replay_start", "--start")
    deprecated_alias(replay, "--replay_end", "--end")
    deprecated_alias(replay, "--replay_source", "--source")
    replay.add_argument("--input", help="with --from files: glob of packet files")
    replay.add_argument("--dry-run", action="store_true", help="say what is missing; replay nothing")
    store_options(replay)
    identity_options(replay, "Operator or above; not needed with --dry-run")
    replay.add_argument("--run-id", help="name of this run (default: replay-<time>)")
    deprecated_alias(replay, "--run_id", "--run-id")
    replay.set_defaults(handler=_replay)

    backup = commands.add_parser(
        "backup", help="a consistent copy of the hot store (SQLite backup API, or pg_dump), with a manifest"
    )
    backup.add_argument("--to", help="folder for the backup (default: OUTPUT/backups)")
    restore = commands.add_parser(
        "restore", help="restore a backup into the hot store and check every table against its manifest"
    )
    restore.add_argument("path", help="the backup file (its manifest is PATH.json)")
    identity_options(restore, "Operator or above")
    for command in (backup, restore):
        store_options(command, with_config=False)
        command.set_defaults(handler=_backup)

    retention = commands.add_parser(
        "retention",
        help="apply the guide's retention table to the hot store, warm tier and archive",
        description="Deletes what is past its time in each tier (config/retention.yaml), never the last copy of "
        "anything the table keeps, and reports what it did. Running it again does nothing more.",
    )
    retention.add_argument("--dry-run", action="store_true", help="report what would be deleted; change nothing")
    retention.add_argument("--now", help="apply as of this time (ISO 8601; default: now)")
    store_options(retention)
    identity_options(retention, "Operator or above; not needed with --dry-run")
    retention.set_defaults(handler=_retention)

    check = commands.add_parser(
        "verify",
        help="check that the hot store, warm tier and archive hold the same events, per source and night",
        description="Exit 0 when every tier holds the same event ids for every source and observing night; "
        "exit 1 and name the missing ids otherwise.",
    )
    check.add_argument("--json", action="store_true", help="print the checks as JSON")
    store_options(check)
    check.add_argument("--now", help="judge retention as of this time (ISO 8601; default: now)")
    check.set_defaults(handler=_verify)
