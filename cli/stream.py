"""Live data: `nightwatch stream` (the streaming job on Pub/Sub, the emulator locally), `nightwatch publish`
(a simulated feed or packet files onto the source topics) and `nightwatch simulate` (packet files, or a feed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cli.common import (
    Parser,
    deprecated_alias,
    metrics_option,
    outputs,
    serve_metrics,
    store_options,
    store_url,
    with_emulator,
)
from cli.run import runner_options
from config.settings import NightwatchConfig, load_config
from core import names, telemetry
from core.decoders import PacketDecoder
from core.event import Packet, utcnow
from devtools.feed import FeedPlan, night_plan, run_feed
from devtools.pubsub import OutgoingPacket, PacketPublisher, ensure_topics
from devtools.simulator import generate_packets, parse_mix, write_packets
from devtools.simulator.night import INCIDENTS, NIGHT_CLASS_WEIGHTS, night_mix, night_rate_per_s
from ops.levels import level_totals
from pipeline.launch import RunnerPlan, plan_runner, submit  # Beam-free until a job is submitted
from store.hot import HotStore
from store.layout import Outputs
from store.schema import metrics


def _night_feed(args: argparse.Namespace) -> bool:
    """A simulated night (at the configured rates, a real night's classes), normal or an incident."""
    return bool(args.night or args.incident)


def _simulate(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.rate or (
        _night_feed(args) and not args.files
    ):  # a live feed on the source topics: the same as `nightwatch publish`
        args.input = None
        return _publish(args, beam_args)
    if not args.files:
        raise ValueError("give --files DIR to write packet files, or --rate R to publish a live feed")
    mix = parse_mix(args.mix) if args.mix else None
    night: dict[str, Any] = {}
    if args.night:  # files of a night: the configured rates' mix and event times, a real night's classes
        config = load_config(args.config)
        expected = {name: spec.expected_rate_per_min for name, spec in config.sources.sources.items()}
        mix = mix or night_mix(expected)
        night = {"class_weights": NIGHT_CLASS_WEIGHTS, "span_s": args.count / night_rate_per_s(expected)}
    packets = generate_packets(
        args.count, seed=args.seed, mix=mix, bad_fraction=args.bad_fraction, rubin_wire=args.rubin_wire, **night
    )
    written = write_packets(packets, Path(args.files))
    print(f"wrote {written} packets to {args.files}")
    return 0


def _feed_plan(args: argparse.Namespace, duration_s: float) -> FeedPlan:
    if _night_feed(args) or args.rate is None:
        config = load_config(args.config)
        expected = {name: spec.expected_rate_per_min for name, spec in config.sources.sources.items()}
        plan = night_plan(expected, duration_s, args.seed, args.incident, rate=args.rate or None)
        if args.mix:
            plan = dataclasses.replace(plan, mix=parse_mix(args.mix))
        if args.burst:
            plan = dataclasses.replace(plan, burst_size=args.burst, burst_at_s=args.burst_at)
        return plan
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


def _publish(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    spec = config.streaming.pubsub
    project = args.project or spec.project
    with with_emulator(args, project):
        ensure_topics(spec, project)
        publisher = PacketPublisher(spec, project, store_url(args))
        try:
            if args.input:
                count, sources = _publish_files(publisher, config, args)
                print(f"published {count} packet files to {', '.join(sources)} topics")
            else:
                report = run_feed(publisher, _feed_plan(args, args.duration))
                print(
                    f"published {report.total} packets ({dict(report.published)}): "
                    f"{report.bad} bad, {report.late} late, {report.duplicates} duplicates"
                )
        finally:
            publisher.close()
    return 0


def _publish_files(
    publisher: PacketPublisher, config: NightwatchConfig, args: argparse.Namespace
) -> tuple[int, list[str]]:
    # Beam's file systems read local, gs:// and s3:// globs alike; imported only when files are published.
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
    return publisher.publish(outgoing), sorted({o.source for o in outgoing})


def _stream(args: argparse.Namespace, beam_args: list[str]) -> int:
    # Beam is imported only by the commands that run a job: the others start fast.
    from pipeline.batch import RunSummary
    from pipeline.streaming import run_stream

    config = load_config(args.config)
    spec = config.streaming.pubsub
    project = args.project or spec.project
    where = outputs(args)
    plan = plan_runner(args, streaming=True)
    if plan.kind != "local":
        return _submit_stream(args, plan, beam_args, config, where, project)
    serve_metrics(args)
    for source, source_spec in config.sources.sources.items():
        telemetry.EXPECTED_RATE.labels(source).set(source_spec.expected_rate_per_min)
    with with_emulator(args, project):
        ensure_topics(spec, project)
        started, stop_feed, feed_result = threading.Event(), threading.Event(), {}

        def feed() -> None:
            started.wait()
            feed_result["report"] = _feed_elsewhere(
                spec, project, where.db_url, _feed_plan(args, args.feed_duration), stop_feed
            )

        feeder = threading.Thread(target=feed, daemon=True) if (args.rate or 0) > 0 or _night_feed(args) else None
        if feeder:
            feeder.start()
        last = {"t": 0.0}
        # With a feed, idleness counts only once the feed is done: a night waits for its first whole minute, and
        # a slow machine makes packets in bursts.
        stop_job = threading.Event()
        idle = {"seen": -1, "since": time.monotonic()}

        def progress(counts: dict[str, int]) -> None:
            telemetry.observe_stream_progress()
            if feeder is not None and args.until_idle:
                seen = counts.get(names.INGESTED, 0)
                if feeder.is_alive() or seen != idle["seen"]:
                    idle.update(seen=seen, since=time.monotonic())
                elif time.monotonic() - idle["since"] >= args.until_idle:
                    stop_job.set()
            if time.monotonic() - last["t"] >= 5:
                last["t"] = time.monotonic()
                print(
                    f"  streaming: received {counts.get(names.RECEIVED, 0)}, "
                    f"stored {names.total(counts, names.stored)}, "
                    f"dead letters {counts.get(names.DEAD_LETTERS, 0)}, "
                    f"alerts {counts.get(names.new(names.ALERTS), 0)}, "
                    f"metric windows {counts.get(names.METRICS_WRITTEN, 0)}",
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
                where,
                project,
                duration,
                args.run_id,
                progress,
                started=started,
                stop=stop_job,
                idle_s=(args.until_idle or None) if feeder is None else None,
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
            "hot store": where.db_url,
            "warm (Parquet)": where.warm_root,
            "archive (Avro)": where.archive_root,
        },
        started_at=info["started_at"],
        finished_at=info["stopped_because"],
    )
    summary.levels = run_levels(where.db_url, info["run_id"])
    if not info["drained"]:
        summary.problems.append("the drain timed out: packets still in flight were not finished")
    print(summary.table())
    report = feed_result.get("report")
    if report:
        print(
            f"feed: published {report.total} ({dict(report.published)}), {report.bad} bad, {report.late} late, "
            f"{report.duplicates} duplicates; unread packets stay queued for the next run"
        )
    print(metrics_table(where.db_url))
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


def _publish_feed(spec: Any, project: str, db_url: str, plan: FeedPlan, stop: Any, reports: Any) -> None:
    """The feed in a process of its own (`_feed_elsewhere`)."""
    publisher = PacketPublisher(spec, project, db_url)
    try:
        reports.put(run_feed(publisher, plan, stop))
    finally:
        publisher.close()


def _feed_elsewhere(spec: Any, project: str, db_url: str, plan: FeedPlan, stop: threading.Event) -> Any:
    """Run the feed in a separate process: making packets is CPU work that would otherwise share the streaming
    job's interpreter lock (and slow both). `stop` (set when the job drains) stops it; returns its report."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    stop_there, reports = context.Event(), context.Queue()
    process = context.Process(
        target=_publish_feed, args=(spec, project, db_url, plan, stop_there, reports), daemon=True
    )
    process.start()
    while process.is_alive() and reports.empty():
        if stop.wait(0.5):
            stop_there.set()
    try:
        report = reports.get(timeout=60)
    except Exception:  # noqa: BLE001 - the feed process died: say so, the job's own tally still accounts
        print("nightwatch: the simulated feed stopped without a report", file=sys.stderr, flush=True)
        report = None
    process.join(timeout=30)
    return report


def _submit_stream(
    args: argparse.Namespace,
    plan: RunnerPlan,
    beam_args: list[str],
    config: NightwatchConfig,
    where: Outputs,
    project: str,
) -> int:
    from pipeline.streaming import build_streaming_pipeline, kafka_sources  # Beam: see _stream

    run_id = args.run_id or "production-stream"
    kafka = None
    if plan.kind == "flink":
        kafka = kafka_sources(config.streaming.pubsub, plan.kafka_bootstrap)
        if plan.dry_run:  # configured above; stand-ins keep the rest of the graph buildable without Java
            import apache_beam as beam

            kafka = {source: beam.Create([(b"", b"")]) for source in kafka}

    def build(p: Any) -> None:
        build_streaming_pipeline(p, config, where, run_id, project, kafka=kafka)

    print(submit(dataclasses.replace(plan, beam_args=plan.beam_args + beam_args), build))
    return 0


def run_levels(db_url: str, run_id: str) -> dict[str, int]:
    """The run's events per level as stored, association raises included (ops.levels: one count everywhere)."""
    store = HotStore(db_url)
    try:
        return level_totals(store, run_id)
    finally:
        store.close()


def metrics_table(db_url: str, per_source: int = 3) -> str:
    """The latest metric windows per source, and the alert volume per observing night."""
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


def _feed_options(command: Parser, rate_default: float | None) -> None:
    command.add_argument(
        "--rate",
        type=float,
        default=rate_default,
        help="packets per second"
        + (" (default: the configured rates of config/sources.yaml)" if rate_default is None else ""),
    )
    command.add_argument(
        "--night",
        action="store_true",
        help="a simulated night: every source at its configured rate (config/sources.yaml), a real night's classes "
        "(a handful of alerts), satellite triggers about one every ten minutes, no corrupt packets",
    )
    command.add_argument(
        "--incident",
        choices=INCIDENTS,
        help="a simulated night with one of the guide's abnormal cases on purpose: the loudest source silent, "
        "its packets 5%% corrupt, a 12,000-packet backlog, or an alert storm",
    )
    command.add_argument("--mix", help="source mix, e.g. ztf=0.6,rubin=0.35,gcn=0.05")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--bad-fraction", type=float, default=0.01, help="share of corrupt packets")
    deprecated_alias(command, "--bad_fraction", "--bad-fraction")
    command.add_argument("--late-fraction", type=float, default=0.02, help="share published minutes late")
    command.add_argument("--duplicate-fraction", type=float, default=0.01, help="share published twice")
    command.add_argument("--burst", type=int, default=0, help="a Rubin visit: this many alerts at once")
    command.add_argument("--burst-at", type=float, default=5.0, help="seconds into the feed for the burst")


def _pubsub_options(command: Parser) -> None:
    command.add_argument("--project", help="GCP project (default: config/streaming.yaml)")
    command.add_argument(
        "--emulator",
        choices=["auto", "yes", "no"],
        default="auto",
        help="start a local Pub/Sub emulator: auto = when PUBSUB_EMULATOR_HOST is not set (default)",
    )
    store_options(command)


def add_commands(commands: argparse._SubParsersAction) -> None:
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
    _feed_options(simulate, 0.0)
    _pubsub_options(simulate)
    simulate.set_defaults(handler=_simulate)

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
    _feed_options(publish, None)
    _pubsub_options(publish)
    publish.set_defaults(handler=_publish)

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
        "--until-idle",
        type=float,
        default=0,
        help="stop (and drain) once nothing has been pulled, stored or dead-lettered for this many seconds "
        "(a busy job is not idle)",
    )
    stream.add_argument("--summary-json", help="also write the summary as JSON here")
    stream.add_argument("--run-id", help="name of this run (default: generated)")
    deprecated_alias(stream, "--run_id", "--run-id")
    metrics_option(stream)
    _feed_options(stream, 0.0)
    _pubsub_options(stream)
    runner_options(stream, with_project=False)
    stream.set_defaults(handler=_stream)
