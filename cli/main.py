"""The `nightwatch` command."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import ConfigError
from pipeline.launch import add_runner_options, plan_runner

if TYPE_CHECKING:
    from store.hot import HotStore


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.batch import run, write_summary_json

    argv = [f"--output={args.output}", f"--seed={args.seed}", f"--bad_fraction={args.bad_fraction}"]
    if args.input:
        argv.append(f"--input={args.input}")
    else:
        argv.append(f"--simulate={args.simulate}")
    for flag, value in (
        ("db_url", args.db_url),
        ("config_dir", args.config),
        ("mix", args.mix),
        ("run_id", args.run_id),
    ):
        if value:
            argv.append(f"--{flag}={value}")
    plan = plan_runner(args, streaming=False)
    if plan.kind != "local":
        return _submit_batch(args, plan, beam_args)
    what = f"packet files {args.input!r}" if args.input else f"{args.simulate} simulated packets"
    print(f"nightwatch: processing {what} -> {args.output}", file=sys.stderr, flush=True)
    summary = run(argv + beam_args)
    print(summary.table())
    if summary.top_alerts:
        print("top alerts of this run:")
        for line in summary.top_alerts:
            print(f"  {line}")
    if args.summary_json:
        write_summary_json(summary, args.summary_json)
        print(f"summary written to {args.summary_json}")
    return 0 if summary.ok else 1


def _submit_batch(args: argparse.Namespace, plan, beam_args: list[str]) -> int:
    from config.settings import load_config
    from pipeline.graph import build_pipeline, read_packets
    from pipeline.launch import submit
    from store.layout import Outputs

    config = load_config(args.config)
    outputs = Outputs.under(args.output, args.db_url)
    run_id = args.run_id or "production-batch"

    def build(p) -> None:
        build_pipeline(read_packets(p, args.input, args.simulate, seed=args.seed), config, outputs, run_id)

    print(submit(dataclasses.replace(plan, beam_args=plan.beam_args + beam_args), build))
    return 0


def _submit_stream(args: argparse.Namespace, plan, beam_args: list[str], config, outputs, project: str) -> int:
    from pipeline.launch import submit
    from pipeline.streaming import build_streaming_pipeline, kafka_sources

    run_id = args.run_id or "production-stream"
    kafka = None
    if plan.kind == "flink":
        kafka = kafka_sources(config.streaming.pubsub, plan.kafka_bootstrap)
        if plan.dry_run:  # configured above; stand-ins keep the rest of the graph buildable without Java
            import apache_beam as beam

            kafka = {source: beam.Create([(b"", b"")]) for source in kafka}

    def build(p) -> None:
        build_streaming_pipeline(p, config, outputs, run_id, project, kafka=kafka)

    print(submit(dataclasses.replace(plan, beam_args=plan.beam_args + beam_args), build))
    return 0


def _simulate(args: argparse.Namespace, beam_args: list[str]) -> int:
    from devtools.simulator import generate_packets, parse_mix, write_packets

    if args.rate:  # a live feed on the source topics: the same as `nightwatch publish`
        args.input = None
        return _publish(args, beam_args)
    if not args.files:
        raise ValueError("give --files DIR to write packet files, or --rate R to publish a live feed")
    mix = parse_mix(args.mix) if args.mix else None
    packets = generate_packets(
        args.count, seed=args.seed, mix=mix, bad_fraction=args.bad_fraction, rubin_wire=args.rubin_wire
    )
    written = write_packets(packets, Path(args.files))
    print(f"wrote {written} packets to {args.files}")
    return 0


def store_url(args: argparse.Namespace) -> str:
    """The hot store a command works on: --db-url, else $NIGHTWATCH_DB_URL, else OUTPUT/nightwatch.db."""
    from store.layout import Outputs

    return Outputs.under(args.output, args.db_url).db_url


def open_store(args: argparse.Namespace) -> HotStore:
    """The command's hot store, its schema created or migrated (imported late: --help stays fast)."""
    from store.hot import HotStore

    store = HotStore(store_url(args))
    store.ensure_schema()
    return store


def _parse_value(text: str) -> object:
    """A value typed on the command line: YAML, so 0.7, true, [0, 12] and words all work."""
    import yaml

    return yaml.safe_load(text)


def _thresholds(args: argparse.Namespace, _beam_args: list[str]) -> int:
    import getpass

    from config.settings import load_config
    from store.hot import HotStore
    from store.thresholds import ThresholdStore, with_cut_value, with_rule_condition

    config = load_config(args.config)
    store = HotStore(store_url(args))
    store.ensure_schema()
    versions = ThresholdStore(store)
    filters = versions.latest("filters") or config.filters
    rules = versions.latest("classification") or config.classification
    if args.action == "show":
        print(f"filters in force: {filters.version}")
        for source in ("ztf", "rubin", "gcn"):
            for cut in filters.cuts_for(source):
                print(f"  {source}.{cut.name}: {cut.field} {cut.op} {cut.value!r}")
        print(f"rules in force: {rules.version}")
        for rule in rules.rules:
            conditions = ", ".join(f"{name} {cond.describe()}" for name, cond in rule.when.items())
            print(f"  {rule.name} -> {rule.event_class} ({rule.score}): {conditions}")
        for row in versions.history(args.history):
            print(f"  v{row['version']} {row['kind']} by {row['author']} at {row['created_at']}: {row['note'] or ''}")
        return 0
    if args.action == "set-cut":
        changed = with_cut_value(filters, args.source, args.name, _parse_value(args.value))
    else:
        changed = with_rule_condition(rules, args.name, args.field, args.op, _parse_value(args.value))
    author = args.author or getpass.getuser()
    version = versions.publish(
        changed,
        author=author,
        note=args.note
        or " ".join(
            str(part)
            for part in (
                args.action,
                getattr(args, "source", ""),
                args.name,
                getattr(args, "field", ""),
                getattr(args, "op", ""),
                args.value,
            )
            if part
        ),
    )
    print(
        f"published {'filters' if args.action == 'set-cut' else 'classification'} version {version}; "
        "running jobs pick it up within seconds"
    )
    return 0


def _feed_plan(args: argparse.Namespace, duration_s: float):
    from devtools.feed import FeedPlan
    from devtools.simulator import parse_mix

    return FeedPlan(
        rate=args.rate,
        duration_s=duration_s,
        mix=parse_mix(args.mix) if args.mix else None,
        seed=args.seed,
        bad_fraction=args.bad_fraction,
        late_fraction=args.late_fraction,
        duplicate_fraction=args.duplicate_fraction,
        burst_size=args.burst,
        burst_at_s=args.burst_at,
    )


def _with_emulator(args: argparse.Namespace, project: str):
    """An emulator to use: the one PUBSUB_EMULATOR_HOST names, a new one (stopped afterwards), or none."""
    import contextlib
    import os

    from devtools.pubsub import EMULATOR_ENV, Emulator

    wanted = args.emulator == "yes" or (args.emulator == "auto" and not os.environ.get(EMULATOR_ENV))
    if not wanted:
        return contextlib.nullcontext()
    print("nightwatch: starting the Pub/Sub emulator ...", file=sys.stderr, flush=True)
    return Emulator(project)


def _publish(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from config.settings import load_config
    from core.decoders import PacketDecoder
    from core.event import Packet, utcnow
    from devtools.feed import run_feed
    from devtools.pubsub import OutgoingPacket, PacketPublisher, ensure_topics

    config = load_config(args.config)
    spec = config.streaming.pubsub
    project = args.project or spec.project
    with _with_emulator(args, project):
        ensure_topics(spec, project)
        publisher = PacketPublisher(spec, project, store_url(args))
        try:
            if args.input:
                from apache_beam.io.filesystems import FileSystems

                decoder = PacketDecoder(config.sources)
                paths = [match.path for match in FileSystems.match([args.input])[0].metadata_list]
                if not paths:
                    raise FileNotFoundError(f"no packet files match --input {args.input!r}")
                outgoing = []
                for path in paths:
                    with FileSystems.open(path) as handle:
                        payload = handle.read()
                    # The source and event time come from the packet itself; undecodable ones go as "gcn" by
                    # default (the pipeline dead-letters them) unless --source says otherwise.
                    decoded = decoder.decode(Packet(payload=payload, origin=path))
                    first = decoded[0]
                    source = args.source or getattr(first, "source", None) or "gcn"
                    when = utcnow() if args.now else getattr(first, "event_time", None) or utcnow()
                    outgoing.append(OutgoingPacket(source, payload, when))
                count = publisher.publish(outgoing)
                print(f"published {count} packet files to {', '.join(sorted({o.source for o in outgoing}))} topics")
            else:
                report = run_feed(publisher, _feed_plan(args, args.duration))
                print(
                    f"published {report.total} packets ({dict(report.published)}): "
                    f"{report.bad} bad, {report.late} late, {report.duplicates} duplicates"
                )
        finally:
            publisher.close()
    return 0


def _stream(args: argparse.Namespace, beam_args: list[str]) -> int:
    import threading

    from config.settings import load_config
    from devtools.feed import run_feed
    from devtools.pubsub import PacketPublisher, ensure_topics
    from pipeline.batch import RunSummary
    from pipeline.streaming import run_stream
    from store.layout import Outputs

    config = load_config(args.config)
    spec = config.streaming.pubsub
    project = args.project or spec.project
    outputs = Outputs.under(args.output, args.db_url)
    plan = plan_runner(args, streaming=True)
    if plan.kind != "local":
        return _submit_stream(args, plan, beam_args, config, outputs, project)
    with _with_emulator(args, project):
        ensure_topics(spec, project)
        started, stop_feed, feed_result = threading.Event(), threading.Event(), {}

        def feed() -> None:
            started.wait()
            publisher = PacketPublisher(spec, project, outputs.db_url)
            try:
                feed_result["report"] = run_feed(publisher, _feed_plan(args, args.feed_duration), stop_feed)
            finally:
                publisher.close()

        feeder = threading.Thread(target=feed, daemon=True) if args.rate > 0 else None
        if feeder:
            feeder.start()
        last = {"t": 0.0}

        def progress(counts: dict[str, int]) -> None:
            import time as _time

            if _time.monotonic() - last["t"] >= 5:
                last["t"] = _time.monotonic()
                stored = sum(v for k, v in counts.items() if k.startswith("stored."))
                print(
                    f"  streaming: received {counts.get('received', 0)}, stored {stored}, "
                    f"dead letters {counts.get('dead_letters', 0)}, alerts {counts.get('alerts.new', 0)}, "
                    f"metric windows {counts.get('metrics.windows_written', 0)}",
                    file=sys.stderr,
                    flush=True,
                )

        duration = args.duration or None
        print(
            f"nightwatch: streaming from {', '.join(spec.topics.values())} (project {project}) "
            f"for {f'{duration:.0f} s' if duration else 'ever (Ctrl-C drains and stops)'} -> {args.output}",
            file=sys.stderr,
            flush=True,
        )
        try:
            counts, info = run_stream(
                beam_args,
                config,
                outputs,
                project,
                duration,
                args.run_id,
                progress,
                started=started,
                idle_s=args.until_idle or None,
                on_drain=stop_feed.set,  # a draining job takes no more packets: the feed stops too
            )
        finally:
            stop_feed.set()
            if feeder:
                feeder.join(timeout=30)
    summary = RunSummary(
        run_id=info["run_id"],
        counters=counts,
        outputs={
            "hot store": outputs.db_url,
            "warm (Parquet)": outputs.warm_root,
            "archive (Avro)": outputs.archive_root,
        },
        started_at=info["started_at"],
        finished_at=info["stopped_because"],
    )
    if not info["drained"]:
        summary.problems.append("the drain timed out: packets still in flight were not finished")
    print(summary.table())
    report = feed_result.get("report")
    if report:
        print(
            f"feed: published {report.total} ({dict(report.published)}), {report.bad} bad, {report.late} late, "
            f"{report.duplicates} duplicates; unread packets stay queued for the next run"
        )
    print(_metrics_table(outputs.db_url))
    if args.summary_json:
        data = summary.as_dict() | {
            "stream": info,
            "feed": report
            and {
                "published": dict(report.published),
                "bad": report.bad,
                "late": report.late,
                "duplicates": report.duplicates,
            },
        }
        Path(args.summary_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary_json).write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0 if summary.ok else 1


def _metrics_table(db_url: str, per_source: int = 3) -> str:
    import sqlalchemy as sa

    from store.hot import HotStore
    from store.schema import metrics

    store = HotStore(db_url)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(metrics).order_by(metrics.c.source, metrics.c.window_start.desc())).all()
    volume = store.alert_volume_by_night()
    store.close()
    lines = [
        "metrics (latest windows per source):",
        "  source  window (UTC)      received  rate/min (expected)  p50/p95/p99 s     error rate  queue  alerts  late",
    ]
    shown: dict[str, int] = {}
    for row in rows:
        if shown.get(row.source, 0) >= per_source:
            continue
        shown[row.source] = shown.get(row.source, 0) + 1
        latency = "/".join(
            "-" if v is None else f"{v:.1f}" for v in (row.latency_p50_s, row.latency_p95_s, row.latency_p99_s)
        )
        expected = f"{row.expected_rate_per_min:g}" if row.expected_rate_per_min is not None else "-"
        lines.append(
            f"  {row.source:<7} {row.window_start:%Y-%m-%d %H:%M}  {row.received:>8}  "
            f"{row.rate_per_min:>8.1f} ({expected:>6})  {latency:<16}  {row.error_rate:>9.2%}  "
            f"{'-' if row.queue_depth is None else row.queue_depth:>5}  {row.alerts:>6}  {row.late:>4}"
        )
    if not shown:
        lines.append("  (no window has closed yet: windows close a minute after their events)")
    if volume:
        nights = ", ".join(f"{night}: {count}" for night, count in list(volume.items())[-3:])
        lines.append(f"alert volume per observing night (guide: < 50): {nights}")
    return "\n".join(lines)


def _replay(args: argparse.Namespace, beam_args: list[str]) -> int:
    from core.decoders.common import parse_iso_utc
    from pipeline.batch import run
    from pipeline.io.replay import ReplayRange, archived_ids, stored_ids
    from store.hot import HotStore
    from store.layout import Outputs

    outputs = Outputs.under(args.output, args.db_url)
    span = ReplayRange(parse_iso_utc(args.start, "--start"), parse_iso_utc(args.end, "--end"), args.source)
    if span.end <= span.start:
        raise ValueError("--end must be after --start")
    if args.source_kind == "files" and not args.input:
        raise ValueError("--from files needs --input GLOB")
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    before = stored_ids(store, span)
    where = f"{span.start.isoformat()} to {span.end.isoformat()}" + (f", source {span.source}" if span.source else "")
    if args.source_kind == "archive":
        expected = archived_ids(outputs.archive_root, span)
        print(
            f"archive holds {len(expected)} events from {where}; the hot store holds {len(before & expected)} "
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
            f"--replay_archive={outputs.archive_root}",
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
        f"reconciliation for {where}: before {len(before)} events, after {len(after)}; recovered "
        f"{len(recovered)}{' (e.g. ' + ', '.join(recovered[:3]) + ')' if recovered else ''}; "
        f"already present {summary.count('events.already_stored')} (stored once, alerts not raised again)"
    )
    return 0 if summary.ok else 1


def utc_stamp() -> str:
    from core.event import utcnow

    return f"{utcnow():%Y%m%dT%H%M%S}"


def _backup(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from ops.backup import backup, export_model_versions, restore
    from store.hot import HotStore
    from store.layout import Outputs

    url = Outputs.under(args.output, args.db_url).db_url
    if args.command == "backup":
        store = HotStore(url)
        store.ensure_schema()
        folder = Path(args.to or Path(args.output) / "backups")
        path = backup(store, folder)
        models = export_model_versions(store, folder / "models")
        store.close()
        print(f"backup written to {path} (manifest {path}.json)")
        print(f"model versions: {len(models)} new in {folder / 'models'} (every version is kept)")
        return 0
    mismatches = restore(url, Path(args.path))
    if mismatches:
        for table, (expected, found) in mismatches.items():
            print(f"MISMATCH {table}: {expected}, {found}")
        return 1
    print(f"restored {args.path} into {url}; every table matches the backup's counts and checksums")
    return 0


def _retention(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from config.settings import load_config
    from core.decoders.common import parse_iso_utc
    from core.event import utcnow
    from ops.retention import apply_retention
    from store.hot import HotStore
    from store.layout import Outputs

    config = load_config(args.config)
    outputs = Outputs.under(args.output, args.db_url)
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    now = parse_iso_utc(args.now, "--now") if args.now else utcnow()
    report = apply_retention(store, outputs.warm_root, outputs.archive_root, config.retention, now, args.dry_run)
    store.close()
    print(f"retention as of {now.isoformat()}{' (dry run: nothing changed)' if args.dry_run else ''}")
    print(report.table())
    return 0


def _verify(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from config.settings import load_config
    from ops.verify import report, verify
    from store.hot import HotStore
    from store.layout import Outputs

    outputs = Outputs.under(args.output, args.db_url)
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    from core.decoders.common import parse_iso_utc

    now = parse_iso_utc(args.now, "--now") if args.now else None
    checks = verify(store, outputs.warm_root, outputs.archive_root, load_config(args.config).retention, now)
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
    return 0 if all(check.ok for check in checks) else 1


def _users(args: argparse.Namespace, _beam_args: list[str]) -> int:
    """Console accounts: whoever runs this holds the database credentials, so it acts as the system (audited)."""
    import getpass
    import os

    from access import accounts, audit, procedures
    from store.hot import HotStore

    store = HotStore(store_url(args))
    store.ensure_schema()
    try:
        if args.action == "bootstrap":
            password = accounts.bootstrap(store, args.name, os.environ.get("NIGHTWATCH_ADMIN_PASSWORD") or None)
            if password is None:
                print(f"a Super Admin exists ({', '.join(accounts.super_admins(store))}): nothing to do")
            elif os.environ.get("NIGHTWATCH_ADMIN_PASSWORD"):
                print(f"created Super Admin {args.name!r} with the password in NIGHTWATCH_ADMIN_PASSWORD")
            else:
                print(f"created Super Admin {args.name!r}; password (shown once, change it on the Access page):")
                print(f"  {password}")
        elif args.action == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            elif args.email and args.sso_only:
                password = None
            else:
                password = getpass.getpass(f"password for {args.name}: ")
                if getpass.getpass("again: ") != password:
                    raise ValueError("the passwords differ")
            role = None if args.role == "none" else args.role
            user = accounts.create_user_as_system(store, getpass.getuser(), args.name, role, password, args.email)
            print(f"created {user.name} ({user.title})")
        elif args.action == "list":
            for user in accounts.list_users(store):
                last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
                state = "active" if user.active else "revoked"
                print(f"{user.name:<24} {user.title:<12} {state:<8} last login {last}  {user.email or ''}")
        elif args.action == "review":
            rows = procedures.access_review(store)
            audit.record(store, f"{accounts.SYSTEM}:{getpass.getuser()}", "access.review", "users", None, None, "cli")
            text = procedures.review_csv(rows)
            if args.out:
                Path(args.out).write_text(text)
                print(f"access review of {len(rows)} users written to {args.out}")
            elif args.csv:
                print(text, end="")
            else:
                for row in rows:
                    print(f"{row['user']:<24} {row['role']:<12} {row['active']:<8} last login {row['last_login']}")
                    print(f"    grants: {row['grants'] or '-'}")
    finally:
        store.close()
    return 0


def store_options(command: argparse.ArgumentParser, with_config: bool = True) -> None:
    """Where the hot store and tiers are (and, optionally, the configuration): shared by most commands."""
    command.add_argument("--output", default="out", help="output folder (default: out)")
    command.add_argument("--db-url", help="hot store URL (default: $NIGHTWATCH_DB_URL or OUTPUT/nightwatch.db)")
    if with_config:
        command.add_argument("--config", help="folder of YAML configuration (default: the shipped config/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightwatch",
        description="Nightwatch: ingest, classify, route and archive astronomical event packets.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the batch pipeline over packet files or the built-in simulator",
        description="Decode, filter, classify and route packets; write the hot store, warm and archive tiers. "
        "Unknown options are passed to Beam (e.g. --runner=DataflowRunner --project=...).",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--input", help="glob of packet files, e.g. 'data/**/*.avro' (quote it)")
    source.add_argument("--simulate", type=int, default=500, help="simulated packets when no --input (default 500)")
    run.add_argument("--output", default="out", help="output folder or gs:// root (default: out)")
    run.add_argument("--db-url", help="hot store URL (default: sqlite file OUTPUT/nightwatch.db)")
    run.add_argument("--config", help="folder of YAML configuration (default: the shipped config/)")
    run.add_argument("--summary-json", help="also write the run summary as JSON here")
    run.add_argument("--mix", help="simulator mix, e.g. ztf=0.6,rubin=0.35,gcn=0.05")
    run.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    run.add_argument("--bad-fraction", type=float, default=0.01, help="share of corrupt simulated packets")
    run.add_argument("--run-id", help="name of this run (default: generated)")
    add_runner_options(run)
    run.set_defaults(handler=_run)

    simulate = commands.add_parser(
        "simulate",
        help="simulated packets in the real formats: to files (--files DIR) or live on Pub/Sub (--rate R)",
        description="With --files: COUNT packet files. With --rate: a live feed on the source topics for --duration "
        "seconds, with a Rubin visit burst (--burst), late, duplicated and bad packets (same as `publish`).",
    )
    simulate.add_argument("--files", help="folder to write packet files into")
    simulate.add_argument("--count", type=int, default=100, help="how many packet files (default 100)")
    simulate.add_argument("--rubin-wire", choices=["container", "confluent", "both"], default="container")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds of live feed (default 60)")
    simulate.set_defaults(handler=_simulate)

    def feed_options(command: argparse.ArgumentParser, rate_default: float) -> None:
        command.add_argument("--rate", type=float, default=rate_default, help="packets per second")
        command.add_argument("--mix", help="source mix, e.g. ztf=0.6,rubin=0.35,gcn=0.05")
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--bad-fraction", type=float, default=0.01, help="share of corrupt packets")
        command.add_argument("--late-fraction", type=float, default=0.02, help="share published minutes late")
        command.add_argument("--duplicate-fraction", type=float, default=0.01, help="share published twice")
        command.add_argument("--burst", type=int, default=0, help="a Rubin visit: this many alerts at once")
        command.add_argument("--burst-at", type=float, default=5.0, help="seconds into the feed for the burst")

    def pubsub_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--project", help="GCP project (default: config/streaming.yaml)")
        command.add_argument(
            "--emulator",
            choices=["auto", "yes", "no"],
            default="auto",
            help="start a local Pub/Sub emulator: auto = when PUBSUB_EMULATOR_HOST is not set (default)",
        )
        store_options(command)

    publish = commands.add_parser(
        "publish",
        help="publish packets to the source topics: a live simulated feed, or packet files",
        description="Without --input: a simulated feed at --rate for --duration seconds, with bursts, late, "
        "duplicated and bad packets. With --input: every matching packet file once.",
    )
    publish.add_argument("--input", help="glob of packet files to publish instead of the simulator")
    publish.add_argument(
        "--source", choices=["ztf", "rubin", "gcn"], help="topic for --input files (default: detected)"
    )
    publish.add_argument("--now", action="store_true", help="stamp --input packets with now, not their event time")
    publish.add_argument("--duration", type=float, default=60.0, help="seconds of simulated feed (default 60)")
    feed_options(publish, 100.0)
    pubsub_options(publish)
    publish.set_defaults(handler=_publish)
    feed_options(simulate, 0.0)
    pubsub_options(simulate)

    stream = commands.add_parser(
        "stream",
        help="run the streaming job on Pub/Sub (the emulator locally), optionally with a simulated feed",
        description="Reads each source's subscription, processes as `run` does, writes the five metrics per "
        "source in 1-minute event-time windows, links multi-messenger coincidences, and publishes CRITICAL/HIGH "
        "alerts to the alerts topic. Ctrl-C (SIGINT) or SIGTERM drains: no packet is lost or stored twice. "
        "Unknown options are passed to Beam.",
    )
    stream.add_argument("--duration", type=float, default=60.0, help="seconds to run; 0 = until Ctrl-C (default 60)")
    stream.add_argument("--feed-duration", type=float, default=45.0, help="seconds the simulated feed runs")
    stream.add_argument(
        "--until-idle", type=float, default=0, help="stop (and drain) once no packet has come in for this many seconds"
    )
    stream.add_argument("--summary-json", help="also write the summary as JSON here")
    stream.add_argument("--run-id", help="name of this run (default: generated)")
    feed_options(stream, 0.0)
    pubsub_options(stream)
    add_runner_options(stream, with_project=False)
    stream.set_defaults(handler=_stream)

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
    replay.add_argument("--input", help="with --from files: glob of packet files")
    replay.add_argument("--dry-run", action="store_true", help="say what is missing; replay nothing")
    store_options(replay)
    replay.add_argument("--run-id", help="name of this run (default: replay-<time>)")
    replay.set_defaults(handler=_replay)

    backup = commands.add_parser(
        "backup", help="a consistent copy of the hot store (SQLite backup API, or pg_dump), with a manifest"
    )
    backup.add_argument("--to", help="folder for the backup (default: OUTPUT/backups)")
    restore = commands.add_parser(
        "restore", help="restore a backup into the hot store and check every table against its manifest"
    )
    restore.add_argument("path", help="the backup file (its manifest is PATH.json)")
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

    thresholds = commands.add_parser(
        "thresholds",
        help="show or change filter cuts and classification rules live (versioned in the hot store)",
        description="Changes are validated, stored as a new version and picked up by running jobs within seconds.",
    )
    actions = thresholds.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the cuts and rules in force, and the latest versions")
    show.add_argument("--history", type=int, default=10, help="how many versions to list (default 10)")
    set_cut = actions.add_parser("set-cut", help="change a filter cut's value, e.g. set-cut ztf real_bogus 0.7")
    set_cut.add_argument("source", choices=["ztf", "rubin", "gcn"])
    set_cut.add_argument("name", help="the cut's name (see `thresholds show`)")
    set_cut.add_argument("value", help="the new value (YAML: 0.7, true, [0, 12])")
    set_rule = actions.add_parser(
        "set-rule", help="set a rule's condition, e.g. set-rule grb_localised pos_error_deg '<=' 3"
    )
    set_rule.add_argument("name", help="the rule's name (see `thresholds show`)")
    set_rule.add_argument("field")
    set_rule.add_argument("op", choices=["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "not_between"])
    set_rule.add_argument("value", help="the value (YAML)")
    for action in (show, set_cut, set_rule):
        store_options(action)
    for action in (set_cut, set_rule):
        action.add_argument("--author", help="who makes the change (default: the login name)")
        action.add_argument("--note", help="why (recorded with the version)")
    thresholds.set_defaults(handler=_thresholds)

    users = commands.add_parser(
        "users",
        help="console accounts: the first Super Admin, new users, the quarterly access review",
        description="Run by whoever holds the hot store's credentials; every change is in the audit log.",
    )
    user_actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    boot = user_actions.add_parser(
        "bootstrap",
        help="create the first Super Admin if there is none (password from NIGHTWATCH_ADMIN_PASSWORD, "
        "else generated and printed once)",
    )
    boot.add_argument("--name", default="admin", help="the Super Admin's user name (default admin)")
    add = user_actions.add_parser("add", help="add a user: nightwatch users add NAME --role ROLE")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["observer", "operator", "admin", "super_admin", "none"])
    add.add_argument("--email", help="the user's single-sign-on (OIDC) e-mail")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    add.add_argument("--sso-only", action="store_true", help="no local password: single sign-on only (needs --email)")
    user_actions.add_parser("list", help="every user, role, state and last login")
    review = user_actions.add_parser("review", help="the quarterly access review: users, roles, grants, last login")
    review.add_argument("--csv", action="store_true", help="print CSV")
    review.add_argument("--out", help="write CSV to this file")
    for action in user_actions.choices.values():
        store_options(action, with_config=False)
    users.set_defaults(handler=_users)

    from cli.agents import add_commands as add_agent_commands

    add_agent_commands(commands, store_options)
    from cli.notify import add_commands as add_notify_commands

    add_notify_commands(commands, store_options)
    from cli.api import add_commands as add_api_commands

    add_api_commands(commands, store_options)

    from cli.ops import add_commands as add_ops_commands

    add_ops_commands(commands, store_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.command not in ("run", "stream", "replay") and beam_args:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    # Importing Beam installs a root handler, hence force=True; our own progress lines are INFO.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", force=True)
    logging.getLogger("nightwatch").setLevel(logging.INFO)
    try:
        return args.handler(args, beam_args)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError, PermissionError) as exc:
        print(f"nightwatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
