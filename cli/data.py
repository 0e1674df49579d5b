"""Data recovery and keeping: `nightwatch replay` (re-read raw packets to recover missing events), `backup` and
`restore` (the hot store, checked against a manifest), `retention` (the guide's table) and `verify` (every tier
holds the same events).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from access import accounts, audit
from cli.common import (
    deprecated_alias,
    open_store,
    outputs,
    store_options,
    store_url,
    system_actor,
    utc_stamp,
    when,
)
from config.backup import load_backup
from config.settings import load_config
from core.decoders.common import parse_iso_utc
from ops.backup import catalog, location, locations_of, prune, restore, restore_to_time, run_backup, ship
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
    argv = [f"--output={args.output}", f"--run_id={args.run_id or 'replay-' + utc_stamp()}"]
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
    store.close()
    print(summary.table())
    recovered = sorted(after - before)
    print(
        f"reconciliation for {period}: before {len(before)} events, after {len(after)}; recovered "
        f"{len(recovered)}{' (e.g. ' + ', '.join(recovered[:3]) + ')' if recovered else ''}; "
        f"already present {summary.count('events.already_stored')} (stored once, alerts not raised again)"
    )
    return 0 if summary.ok else 1


def _actor(store: Any, args: argparse.Namespace, permission: str) -> str:
    """Who acts: `--as USER`, checked for the guide's role (access/), else the system as this login."""
    if args.as_user:
        return accounts.acting(store, args.as_user, permission).name
    return system_actor()


def _backup(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_backup(args.config)
    places = locations_of(config, args.to, args.output)  # a scheme nothing here can write is refused first
    if args.list:
        for entry in catalog(places[0]):
            print(
                f"{entry.taken_at:%Y-%m-%d %H:%M:%S} UTC  {entry.kind:<7} {entry.name}  "
                f"restores to {entry.point:%Y-%m-%d %H:%M:%S} on"
            )
        return 0
    store = open_store(args)
    try:
        actor = _actor(store, args, "run_operations")
        if args.frequent and store.engine.dialect.name == "sqlite":
            args.ship_wal = False  # SQLite: the frequent backup is an online snapshot (restore-to-time picks it)
        elif args.frequent:
            args.ship_wal = True  # PostgreSQL: between base backups, the WAL shipped is the continuous part
        if args.ship_wal:
            shipped = ship(config, places)
            pruned = [name for place in places for name in prune(place, config.retention_days)]
            audit.record(
                store, actor, "backup.ship_wal", "backups", None, {"shipped": shipped, "pruned": pruned}, "cli"
            )
            print(f"WAL segments shipped: {shipped}; pruned: {len(pruned)}")
            return 0
        run = run_backup(store, config, places, args.method)
        audit.record(
            store, actor, "backup.take", "backups", None, {"name": run.name, "kind": run.kind, "to": run.written}, "cli"
        )
    finally:
        store.close()
    print(f"backup written to {run.written[0]} (manifest {run.written[0]}.json)")
    for copy in run.written[1:]:
        print(f"copy written to {copy} (Region B)")
    print(f"model versions: {run.models} in {places[0].shown('models')} (every version is kept)")
    if run.kind == "pgbase":
        print(f"WAL segments shipped: {run.wal_shipped}")
    if run.pruned:
        print(f"pruned (older than {config.retention_days:g} days): {', '.join(run.pruned)}")
    return 0


def _restore(args: argparse.Namespace, _beam_args: list[str]) -> int:
    url = store_url(args)
    if bool(args.path) == bool(args.to_time):
        raise ValueError("restore needs a backup PATH or --to-time TIME (one of them)")
    store = open_store(args)
    try:
        # Restoring replaces the store's contents: the Admin's configure_system, checked before anything changes.
        if args.to_time and not args.as_user:
            raise PermissionError("restore --to-time needs --as USER (an Admin)")
        actor = _actor(store, args, "configure_system")
    finally:
        store.close()
    if args.path:
        mismatches = restore(url, Path(args.path))
        note = {"path": args.path}
        restored = f"restored {args.path} into {url}"
    else:
        config = load_backup(args.config)
        place = location(args.source or locations_of(config, None, args.output)[0].url)
        result = restore_to_time(url, parse_iso_utc(args.to_time, "--to-time"), place, config)
        mismatches = result.mismatches
        note = {"to_time": args.to_time, "backup": result.backup, "kind": result.kind, "from": place.url}
        restored = (
            f"restored {url} to {result.restored_to.isoformat()} from {result.backup} ({result.kind}) in {place.url}"
        )
    store = HotStore(url)
    audit.record(store, actor, "backup.restore", "hot store", None, note | {"mismatches": sorted(mismatches)}, "cli")
    store.close()
    if mismatches:
        for table, (expected, found) in mismatches.items():
            print(f"MISMATCH {table}: {expected}, {found}")
        return 1
    print(
        restored
        + ("; every table matches the backup's counts and checksums" if args.path or result.kind != "pgbase" else "")
    )
    return 0


def _retention(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    where = outputs(args)
    store = open_store(args)
    now = when(args.now, "--now")
    done = apply_retention(store, where.warm_root, where.archive_root, config.retention, now, args.dry_run)
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
    replay.add_argument("--run-id", help="name of this run (default: replay-<time>)")
    deprecated_alias(replay, "--run_id", "--run-id")
    replay.set_defaults(handler=_replay)

    backup = commands.add_parser(
        "backup",
        help="back up the hot store (SQLite snapshot, pg_dump, or a PostgreSQL base backup with its WAL), "
        "copy it to Region B and prune past the retention",
        description="Locations are folders or gs:// / s3:// / file:// URLs (config/backup.yaml: location, region_b, "
        "retention_days). Other schemes are refused.",
    )
    backup.add_argument(
        "--to", help="folder or URL for the backup (default: backup.yaml's location, else OUTPUT/backups)"
    )
    backup.add_argument(
        "--method", choices=["dump", "base"], help="PostgreSQL: pg_dump or pg_basebackup (default: config)"
    )
    backup.add_argument("--ship-wal", action="store_true", help="only ship the archived WAL and prune (PostgreSQL)")
    backup.add_argument(
        "--frequent",
        action="store_true",
        help="the scheduler's frequent backup: a snapshot on SQLite, --ship-wal on PostgreSQL",
    )
    backup.add_argument("--list", action="store_true", help="list the backups in the location and what they restore to")
    backup.set_defaults(handler=_backup)
    restore = commands.add_parser(
        "restore",
        help="restore a backup (PATH) or the store as it was at a time (--to-time), checked and audited",
    )
    restore.add_argument("path", nargs="?", help="the backup file (its manifest is PATH.json)")
    restore.add_argument(
        "--to-time",
        help="restore to this moment (ISO 8601, UTC if no zone): the WAL replayed to it, or the newest "
        "snapshot taken at or before it",
    )
    restore.add_argument(
        "--from", dest="source", help="the location to restore from (default: backup.yaml's; Region B: its URL)"
    )
    restore.set_defaults(handler=_restore)
    for command in (backup, restore):
        store_options(command)
        command.add_argument("--as", dest="as_user", help="your console user (backup: Operator; restore: Admin)")

    retention = commands.add_parser(
        "retention",
        help="apply the guide's retention table to the hot store, warm tier and archive",
        description="Deletes what is past its time in each tier (config/retention.yaml), never the last copy of "
        "anything the table keeps, and reports what it did. Running it again does nothing more.",
    )
    retention.add_argument("--dry-run", action="store_true", help="report what would be deleted; change nothing")
    retention.add_argument("--now", help="apply as of this time (ISO 8601; default: now)")
    store_options(retention)
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
