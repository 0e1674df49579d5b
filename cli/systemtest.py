"""`nightwatch system-test`: the guide's quarterly full system test as one report.

Injection through every source, a night replayed from the archive, backup and restore, the retention dry run,
every notification channel to a local test receiver, the API's and the console's health, the escalation ladder
on a fake clock. Each step passes or fails with its evidence; the run is stored (`procedure_runs`) and the
console's System test page shows the last results. Exit 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from access.accounts import acting
from cli.common import EXIT_FAILURE, EXIT_OK, open_store, outputs, store_options
from config.settings import load_config
from core.event import utcnow
from ops import inject, systemcheck
from ops.procedure import Outcome, Procedure, StepFailed
from store.hot import HotStore
from store.layout import Outputs
from store.schema import events
from store.tiers import read_archive

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("ztf", "rubin", "gcn")


def _injection(args: argparse.Namespace, config: Any, store: Any) -> Outcome:
    """Designed packets of every source through a batch run (or the running job, --through pubsub)."""
    from cli.ops import through_batch

    mix = inject.DEFAULT_CLASS_MIX
    packets = inject.make_packets(args.count, mix, args.seed)
    made = Counter(packet.source for packet in packets)
    missing_sources = [source for source in SOURCES if not made[source]]
    if missing_sources:
        raise StepFailed(f"the injection set has no {', '.join(missing_sources)} packet: raise --count")
    expected = inject.expected_classes(packets, config)
    report_id = inject.new_report_id()
    if args.through == "batch":
        through_batch(packets, args.output, args.db_url, args.config, report_id)
    else:
        inject.through_pubsub(packets, expected, config, config.streaming.pubsub.project, store, args.timeout)
    report = inject.score(store, expected, report_id, args.through)
    inject.save(store, report)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.source).where(events.c.event_id.in_(list(expected)))).all()
    stored = Counter(row.source for row in rows)
    designed = Counter(event_id.split(":", 1)[0] for event_id in expected)
    per_source = ", ".join(f"{source} {stored[source]}/{designed[source]}" for source in SOURCES)
    complete = all(stored[source] == designed[source] > 0 for source in SOURCES)
    evidence = f"stored per source {per_source}; {report.reason} ({report.report_id})"
    return Outcome(report.passed and complete, evidence, {"report_id": report.report_id})


def _replay(args: argparse.Namespace, where: Outputs, scratch: Path) -> Outcome:
    """The newest night of the archive replayed into a scratch store: every archived event must come back."""
    from pipeline.batch import run

    records = [r for r in read_archive(where.archive_root) if r["night"]]
    if not records:
        raise StepFailed(f"the archive under {where.archive_root} holds no night to replay")
    night = max(r["night"] for r in records)
    chosen = [r for r in records if r["night"] == night]
    start = min(r["event_time"] for r in chosen)
    end = max(r["event_time"] for r in chosen)
    target = Outputs.under(str(scratch / "replay"), None)
    argv = [
        f"--output={scratch / 'replay'}",
        "--run_id=system-test-replay",
        f"--replay_archive={where.archive_root}",
        f"--replay_start={start.isoformat()}",
        f"--replay_end={(end + timedelta(seconds=1)).isoformat()}",  # the range's end is exclusive
    ]
    argv += [f"--config_dir={args.config}"] if args.config else []
    summary = run(argv)
    replayed = HotStore(target.db_url)
    try:
        with replayed.engine.connect() as conn:
            got = set(conn.execute(sa.select(events.c.event_id)).scalars())
    finally:
        replayed.close()
    wanted = {r["event_id"] for r in chosen}
    lost = wanted - got
    evidence = f"night {night}: {len(wanted)} archived events, {len(wanted & got)} replayed into a scratch store"
    if lost:
        return Outcome(False, f"{evidence}; missing {len(lost)} (e.g. {', '.join(sorted(lost)[:3])})")
    return Outcome(summary.ok, evidence + ("" if summary.ok else f"; run problems: {summary.problems}"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _services(args: argparse.Namespace, scratch: Path) -> Iterator[dict[str, str]]:
    """The API's and the console's health URLs: the ones given, else local servers started over --output."""
    config = load_config(args.config)
    api_path, console_path = (
        config.endpoints.endpoints["api"].health_path,
        config.endpoints.endpoints["dashboard"].health_path,
    )
    urls, started = {}, []
    store_args = ["--output", args.output] + (["--db-url", args.db_url] if args.db_url else [])
    if args.api_url:
        urls["api"] = args.api_url.rstrip("/") + api_path
    else:
        port = args.api_port or _free_port()
        command = [sys.executable, "-m", "cli.main", "api", "--port", str(port), *store_args]
        started.append(_start(command, scratch / "api.log"))
        urls["api"] = f"http://127.0.0.1:{port}{api_path}"
    if args.console_url:
        urls["console"] = args.console_url.rstrip("/") + console_path
    else:
        port = args.console_port or _free_port()
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "dashboard" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--",
            *store_args,
        ]
        started.append(_start(command, scratch / "console.log"))
        urls["console"] = f"http://127.0.0.1:{port}{console_path}"
    try:
        yield urls
    finally:
        for process in started:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as handle:
        return subprocess.Popen(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603


def _health(url: str, wait_s: float) -> Outcome:
    deadline = time.monotonic() + wait_s
    while True:
        outcome = systemcheck.http_health(url)
        if outcome.passed or time.monotonic() > deadline:
            return outcome
        time.sleep(1.0)


def _system_test(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    where = outputs(args)
    store = open_store(args)
    scratch = systemcheck.scratch_folder(Path(args.scratch or Path(args.output) / "system-tests"))
    try:
        acting(store, args.as_user, "run_operations")
        run = Procedure(
            store,
            "system_test",
            args.as_user,
            progress=lambda line: print(line, flush=True),
            stop_on_failure=False,
            details={"output": args.output, "scratch": str(scratch)},
        )
        with systemcheck.local_receivers() as receivers, _services(args, scratch) as urls:
            run.step("injection through every source", lambda: _injection(args, config, store))
            run.step("replay a night from the archive", lambda: _replay(args, where, scratch))
            run.step("backup and restore", lambda: systemcheck.backup_and_restore(store, scratch))
            run.step("retention dry run", lambda: systemcheck.retention_dry_run(store, where, config, utcnow()))
            run.step("notification channels", lambda: systemcheck.channels_check(config, receivers))
            run.step("API health", lambda: _health(urls["api"], args.wait))
            run.step("console health", lambda: _health(urls["console"], args.wait))
            run.step("escalation ladder (fake clock)", lambda: systemcheck.escalation_check(config, receivers, scratch))
        passed = run.finish()
    finally:
        store.close()
        if not args.keep_scratch:
            systemcheck.remove(scratch)
    return EXIT_OK if passed else EXIT_FAILURE


def add_commands(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "system-test",
        help="the quarterly full system test: every check in one stored report (the console shows the last)",
        description="Injection through every source, a night replayed from the archive, backup and restore, the "
        "retention dry run, notification channels to local test receivers, API and console health, the escalation "
        "ladder on a fake clock. Exit 1 if any step failed.",
    )
    command.add_argument("--as", dest="as_user", required=True, help="your console user (Operator or above)")
    command.add_argument("--count", type=int, default=60, help="injected events (default 60)")
    command.add_argument("--seed", type=int, default=11, help="the injection set (default 11)")
    command.add_argument("--through", choices=["batch", "pubsub"], default="batch", help="injection path")
    command.add_argument("--timeout", type=float, default=120.0, help="pubsub: wait this long for the events (s)")
    command.add_argument("--api-url", help="a running API (default: one started here over --output)")
    command.add_argument("--console-url", help="a running console (default: one started here over --output)")
    command.add_argument("--api-port", type=int, default=0, help="port of the API started here (default: a free one)")
    command.add_argument("--console-port", type=int, default=0, help="port of the console started here (default: free)")
    command.add_argument("--wait", type=float, default=60.0, help="seconds a started service may take (default 60)")
    command.add_argument("--scratch", help="scratch folder (default OUTPUT/system-tests)")
    command.add_argument("--keep-scratch", action="store_true", help="keep the scratch stores and logs")
    store_options(command)
    command.set_defaults(handler=_system_test)
