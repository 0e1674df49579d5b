"""Operations commands: inject, canary, health, scale advise, checklist, store upkeep.

Exit codes monitoring can use: `health` exits with the severity's number (1 = SEV-1 ... 4 = SEV-4, 0 = all
normal) and 5 when it cannot check (the store unreachable, a bad configuration: one line says why); `inject`
exits 1 when critical recall is under 99% (SEV-2); `checklist` exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cli.common import EXIT_CANNOT_CHECK, open_store, store_options
from config.settings import load_config
from core.event import utcnow
from devtools import bench as benchmarks
from devtools.simulator import SimulatedPacket
from ops import inject, scaling
from ops.checklist import run_checklist
from ops.health import evaluate, runbook_contacts
from ops.sysconfig import record_files
from store.configs import in_force
from store.schema import metrics as metric_windows
from store.upkeep import upkeep


def through_batch(
    packets: Sequence[SimulatedPacket], output: str, db_url: str | None, config_dir: str | None, report_id: str
) -> None:
    """Write the packets as files and run the batch pipeline over them, flagged injected."""
    # Beam is imported only by the commands that run a job: the others start fast.
    from pipeline.batch import run

    with tempfile.TemporaryDirectory(prefix="nightwatch-inject-") as folder:
        for i, packet in enumerate(packets):  # the decoders sniff the format: the name is for people
            (Path(folder) / f"{i:06d}-{packet.source}.packet").write_bytes(packet.payload)
        argv = [f"--input={folder}/*", f"--output={output}", f"--run_id={report_id}", "--injected"]
        argv += [f"--db_url={db_url}"] if db_url else []
        argv += [f"--config_dir={config_dir}"] if config_dir else []
        run(argv)


def _inject_once(args: argparse.Namespace, config: Any, store: Any, seed: int) -> Any:
    mix = inject.parse_class_mix(args.mix)
    report_id = inject.new_report_id()
    packets = inject.make_packets(args.count, mix, seed)
    expected = inject.expected_classes(packets, config)
    print(f"nightwatch: injecting {len(packets)} packets through {args.through} ({report_id})", file=sys.stderr)
    if args.through == "batch":
        through_batch(packets, args.output, args.db_url, args.config, report_id)
    else:
        project = args.project or config.streaming.pubsub.project

        def progress(found: int, total: int) -> None:
            print(f"  stored {found} of {total}", file=sys.stderr, flush=True)

        inject.through_pubsub(packets, expected, config, project, store, args.timeout, progress)
    report = inject.score(store, expected, report_id, args.through)
    inject.save(store, report)
    return report


def _inject(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        if args.list:
            rows = inject.reports(store)
            for row in rows:
                recall = "-" if row["critical_recall"] is None else f"{row['critical_recall']:.1%}"
                verdict = "PASS" if row["passed"] else f"FAIL {row['severity']}"
                print(
                    f"{row['created_at']:%Y-%m-%d %H:%M:%S}  {row['report_id']:<32} {row['through']:<7}"
                    f"{row['injected']:>6} injected  critical recall {recall:>7}  {verdict}"
                )
            if not rows:
                print("no injection reports yet: run `nightwatch inject --count 200`")
            return 0
        config = load_config(args.config)
        report = _inject_once(args, config, store, args.seed if args.seed is not None else int(time.time()))
    finally:
        store.close()
    print(json.dumps(asdict(report), indent=2, default=str) if args.json else report.table())
    return 0 if report.passed else 1


def _canary(args: argparse.Namespace, _beam_args: list[str]) -> int:
    """Inject a few events every N minutes: every stage exercised, the latency panel fed, silence noticed."""
    config = load_config(args.config)
    store = open_store(args)
    failures = 0
    try:
        for beat in range(args.iterations or sys.maxsize):
            started = time.monotonic()
            report = _inject_once(args, config, store, int(time.time()) + beat)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            latency = report.latency_s["p50"]
            print(
                f"{stamp} canary {report.report_id}: {report.injected - len(report.missing)}/{report.injected} "
                f"stored, latency p50 {latency if latency is None else round(latency, 2)} s, "
                f"{'ok' if report.passed and not report.missing else 'PROBLEM: ' + report.reason}",
                flush=True,
            )
            failures += bool(report.missing) or not report.passed
            if args.iterations and beat + 1 >= args.iterations:
                break
            time.sleep(max(0.0, args.every * 60 - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 1 if failures else 0


def _health(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        # Judged against the configuration in force: the console's stored documents over DIR's files.
        config = in_force(load_config(args.config), store)
        record_files(store, config)
        report = evaluate(store, config, utcnow(), window=timedelta(minutes=args.minutes))
    finally:
        store.close()
    code = int(report.severity[-1]) if report.severity else 0
    if args.json:
        print(json.dumps(health_dict(report), indent=2, default=str))
        return code
    print(health_text(report))
    return code


def health_dict(report: Any) -> dict[str, Any]:
    return {
        "severity": report.severity,
        "reason": report.reason,
        "basis": report.basis,
        "window": [report.window_start, report.window_end],
        "stale": report.stale,
        "runbook": asdict(report.runbook) if report.runbook else None,
        "panels": [
            {
                "name": p.name,
                "value": p.value,
                "display": p.display,
                "normal": p.normal,
                "status": p.status,
                "by_source": p.by_source,
                "action": p.action,
                "runbook": p.runbook.title,
            }
            for p in report.panels
        ],
        "agents": report.agents.status,
        "schedule": report.schedule,
        "intake_paused": report.intake_paused,
        "intake": report.intake_note,
        "contacts": report.contacts,
        "contact_book": report.contact_book,
        "config_version": report.config_version,
    }


def health_text(report: Any) -> str:
    lines = [
        f"health at {report.now:%Y-%m-%d %H:%M:%S} UTC, window {report.window_start:%H:%M}-{report.window_end:%H:%M}"
        f" ({report.basis}), configuration version {report.config_version or 'files'}"
    ]
    for panel in report.panels:
        lines.append(f"{panel.status.upper():<8}{panel.name:<20}{panel.display or '-'}  (normal {panel.normal})")
        if panel.abnormal:
            lines.append(f"{'':<8}action: {panel.action}; runbook: {panel.runbook.title}")
    for agent, status in report.agents.status.items():
        lines.append(f"{status.upper():<8}agent {agent}  (normal: latency p95 within its budget, breaker closed)")
    lines.append(f"intake: {report.intake_note or 'every source pulling'}")
    lines += [f"source {source}: {state}" for source, state in report.schedule.items()]
    lines.append(f"severity: {report.severity or 'none'}: {report.reason}")
    runbook = report.runbook or next((p.runbook for p in report.panels if p.abnormal), None)
    if runbook and report.severity:
        lines.append(f"follow: {runbook.title}")
        lines += [f"  {i}. {step}" for i, step in enumerate(runbook.steps, 1)]
        contacts = runbook_contacts(runbook, report.contact_book, report.contacts)
        lines += ["  contacts:"] + [f"    {line}" for line in contacts] if contacts else []
    return "\n".join(lines)


def live_metrics(
    store: Any, cpu_percent: float | None, minutes: int, budgets: dict[str, int] | None = None
) -> scaling.Metrics:
    """The scaling inputs now: queue depth and latency from the latest metric windows, agents' p95 against
    budget (`budgets`: those in force, by agent; else the budget each window recorded), and CPU as given (or this
    machine's load when not)."""
    since = utcnow() - timedelta(minutes=minutes)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(metric_windows).where(metric_windows.c.updated_at >= since)).all()
    latest: dict[str, Any] = {}
    for row in rows:
        if row.source not in latest or row.window_start > latest[row.source].window_start:
            latest[row.source] = row
    depths = [row.queue_depth for row in latest.values() if row.queue_depth is not None]
    latencies = [row.latency_p50_s for row in latest.values() if row.latency_p50_s is not None]
    shares: dict[str, float] = {}
    for row in store.agent_windows(since=since):
        budget = (budgets or {}).get(row["agent"]) or row["budget_ms"]
        if row["latency_p95_ms"] is not None and budget:
            shares[row["agent"]] = row["latency_p95_ms"] / budget
    if cpu_percent is None and hasattr(os, "getloadavg"):
        cpu_percent = min(100.0, os.getloadavg()[0] / (os.cpu_count() or 1) * 100.0)
    return scaling.Metrics(sum(depths) if depths else None, cpu_percent, max(latencies) if latencies else None, shares)


def _scale(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        # Agents are judged against the budgets in force (a budget changed in the console counts at once).
        config = in_force(load_config(args.config), store)
        budgets = {name: spec.budget_ms for name, spec in config.agents.agents.items()}
        metrics = live_metrics(store, args.cpu, args.minutes, budgets)
    finally:
        store.close()
    advice = scaling.advise(metrics, args.processors, args.agents, args.max_replicas)
    if args.json:
        print(
            json.dumps(
                {"metrics": asdict(metrics), "advice": [asdict(a) | {"command": a.command} for a in advice]}, indent=2
            )
        )
        return 0
    print(
        f"metrics: queue depth {metrics.queue_depth}, CPU {metrics.cpu_percent}, latency p50 {metrics.latency_p50_s} s,"
        f" agents p95/budget {dict((k, round(v, 2)) for k, v in metrics.agent_p95_share.items()) or '-'}"
    )
    for item in advice:
        print(f"{item.deployment}: {item.direction} {item.current} -> {item.recommended} ({'; '.join(item.reasons)})")
        if item.direction != "hold":
            print(f"  {item.command}")
    return 0


def _checklist(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    store = open_store(args)
    try:
        result = run_checklist(args.which, store, config, args.output)
    finally:
        store.close()
    print(result.text())
    return 0 if result.ok else 1


def _upkeep(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        for line in upkeep(store):
            print(line)
    finally:
        store.close()
    return 0


def _bench(args: argparse.Namespace, _beam_args: list[str]) -> int:
    scenarios = args.scenario or benchmarks.ALL_SCENARIOS
    report = benchmarks.bench(args.size, scenarios, Path(args.results) if args.results else benchmarks.RESULTS_DIR)
    print(benchmarks.table(report))
    print(f"results written to {args.results or benchmarks.RESULTS_DIR}/latest-{args.size}.json")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    inject = commands.add_parser(
        "inject",
        help="injection test: synthetic events of known class through the real pipeline; recall per class",
        description="Creates packets in the real formats designed to land in known classes, flags them injected, "
        "sends them through the pipeline (a batch run, or the running stream job via Pub/Sub), and reports recall "
        "and precision per class, latency and agent skips. Exit 1 when critical recall < 99%% (SEV-2).",
    )
    inject.add_argument("--count", type=int, default=200, help="events to inject (default 200)")
    inject.add_argument(
        "--mix",
        help="class shares, e.g. critical=0.2,significant=0.3,routine=0.5 "
        "(default critical .1, significant .25, interesting .2, routine .25, rejected .2)",
    )
    inject.add_argument(
        "--through",
        choices=["batch", "pubsub"],
        default="batch",
        help="batch: a pipeline run here; pubsub: publish for the running stream job (default batch)",
    )
    inject.add_argument("--project", help="Pub/Sub project (default: config/streaming.yaml)")
    inject.add_argument("--timeout", type=float, default=120.0, help="pubsub: wait this long for the events (s)")
    inject.add_argument("--seed", type=int, help="fix the synthetic events (default: a new set each time)")
    inject.add_argument("--json", action="store_true", help="print the report as JSON")
    inject.add_argument("--list", action="store_true", help="list the stored reports instead")
    store_options(inject)
    inject.set_defaults(handler=_inject)

    canary = commands.add_parser(
        "canary", help="a heartbeat of injected events every N minutes through the running pipeline"
    )
    canary.add_argument("--every", type=float, default=10.0, help="minutes between beats (default 10)")
    canary.add_argument("--count", type=int, default=10, help="events per beat (default 10)")
    canary.add_argument("--mix", help="class shares per beat (as for inject)")
    canary.add_argument("--through", choices=["pubsub", "batch"], default="pubsub")
    canary.add_argument("--project", help="Pub/Sub project (default: config/streaming.yaml)")
    canary.add_argument("--timeout", type=float, default=60.0, help="wait this long for each beat's events (s)")
    canary.add_argument("--iterations", type=int, default=0, help="stop after this many beats (default: forever)")
    store_options(canary)
    canary.set_defaults(handler=_canary, seed=None, json=False, list=False)

    health = commands.add_parser(
        "health",
        help="the guide's monitoring panels against their normal ranges, the severity and the runbook",
        description="Exit code = the severity (1 SEV-1 ... 4 SEV-4; 0 all normal), for monitoring.",
    )
    health.add_argument("--minutes", type=int, default=15, help="judge the last N minutes (default 15)")
    health.add_argument("--json", action="store_true", help="print as JSON")
    store_options(health)
    health.set_defaults(handler=_health, failure_code=EXIT_CANNOT_CHECK)

    scale = commands.add_parser("scale", help="scaling advice from the guide's auto-scaling rules")
    actions = scale.add_subparsers(dest="action", required=True, metavar="ACTION")
    advise = actions.add_parser("advise", help="what to scale and by how much, from the live metrics")
    advise.add_argument("--processors", type=int, default=2, help="event-processor replicas now (default 2)")
    advise.add_argument("--agents", type=int, default=2, help="agent-pool replicas now (default 2)")
    advise.add_argument("--cpu", type=float, help="CPU usage %% of the processors (default: this machine's load)")
    advise.add_argument("--max-replicas", type=int, default=100, help="never advise more (default 100)")
    advise.add_argument("--minutes", type=int, default=10, help="metrics of the last N minutes (default 10)")
    advise.add_argument("--json", action="store_true")
    store_options(advise)
    advise.set_defaults(handler=_scale)

    checklist = commands.add_parser("checklist", help="the guide's daily checklist as a report for the handoff")
    checklist.add_argument(
        "which",
        choices=["morning", "ops", "evening", "night"],
        help="morning 06:00 (overnight alerts, health), ops 09:00 (processing metrics), "
        "evening 18:00 (pre-night health check), night 22:00 (night processing started)",
    )
    store_options(checklist)
    checklist.set_defaults(handler=_checklist)

    bench = commands.add_parser(
        "bench",
        help="benchmarks: batch throughput (Beam vs plain Python, 1 and 2 workers), streaming latency, memory",
        description="Runs each scenario in a process of its own on simulated real-format packets; prints a table "
        "and writes JSON to bench/results/. The full size takes about 5 minutes.",
    )
    bench.add_argument("--size", choices=["small", "medium", "full"], default="full", help="default full")
    bench.add_argument(
        "--scenario",
        action="append",
        choices=["reference", "beam-1", "beam-2", "stream"],
        help="run only these (repeatable; default all)",
    )
    bench.add_argument("--results", help="folder for the JSON results (default bench/results)")
    bench.set_defaults(handler=_bench)

    store = commands.add_parser("store", help="hot store maintenance")
    store_actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    upkeep = store_actions.add_parser("upkeep", help="vacuum, analyse and rebuild indexes (the weekly index rebuild)")
    store_options(upkeep, with_config=False)
    upkeep.set_defaults(handler=_upkeep)
