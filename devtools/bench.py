"""`nightwatch bench` (`make bench`): throughput, latency, per-stage cost and memory, like against like in one run.

Why this module is long: the scenarios share their packets, clocks and sizing, and the table compares them side
by side; each scenario is a short function here.

Scenarios, each in a process of its own so its peak memory is its own:
- `reference`: the plain-Python loop calling the same stage functions as the pipeline (decode, filter,
  classify, route, agents, hot store, warm, archive) with no Beam; CPU time per stage per event.
- `beam-1`, `beam-2`: the batch pipeline on the FnApiRunner over the same packet files, 1 and 2 workers.
- `dask-2`: the same batch pipeline on a local dask.distributed cluster (a scheduler and 2 worker processes).
- `scale`: Beam with 1 worker at several sizes (`scale` in SIZES): the cost per packet, so anything that grows
  faster than the input (a hot key, a quadratic step) shows as a rising cost.
- `stream`: the streaming job on the BundleBasedDirectRunner against the Pub/Sub emulator: a steady rate, then
  a burst published at once (a Rubin visit); latency publish -> hot store, share of the burst out in 60 s.

Packets are the simulator's real formats (ZTF and Rubin Avro with cutouts, GCN JSON and VOEvent), written
to files first (a source, not `beam.Create`). Results print as a table and go to bench/results/ as JSON with
the machine, the versions and the parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SIZES: dict[str, dict[str, Any]] = {
    # The test's size: every scenario end to end in well under a minute.
    "small": {"packets": 300, "rate": 40, "steady_s": 4, "burst": 200, "cap_s": 40, "scale": [100, 400]},
    # For profiling the streaming job at a realistic load in a minute or two.
    "medium": {
        "packets": 2000,
        "rate": 100,
        "steady_s": 20,
        "burst": 2000,
        "cap_s": 40,
        "scale": [500, 2000, 8000],
    },
    # The issue's targets: Rubin's average alert rate, and a 10,000-alert visit; the cost per packet from 1,000 to
    # 20,000 packets (a scaled-down 1,000 -> 100,000: the simulator and the machine's 2 shared cores set the top).
    "full": {
        "packets": 5000,
        "rate": 250,
        "steady_s": 30,
        "burst": 10_000,
        "cap_s": 90,
        "scale": [1000, 5000, 20_000],
    },
}
TARGETS = {
    "reference_packets_per_s": 3000.0,
    "beam_over_reference": 0.7,
    "two_over_one_process": 1.6,
    "stream_p50_s": 5.0,
    "stream_p99_s": 30.0,
    "burst_share_in_60s": 0.98,
    "peak_rss_gib": 2.0,
}
RESULTS_DIR = Path(__file__).resolve().parents[1] / "bench" / "results"


def peak_rss_mib(with_children: bool = True) -> float:
    """This process's peak resident memory, plus the largest child's (the multi-process workers); Linux
    reports KiB. The streaming scenario's child is the Pub/Sub emulator, which is not Nightwatch's memory."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if with_children else 0
    return round((own + children) / 1024.0, 1)


def write_packets(folder: Path, count: int, seed: int = 7) -> int:
    from devtools.simulator import generate_packets

    folder.mkdir(parents=True, exist_ok=True)
    for i, packet in enumerate(generate_packets(count, seed=seed, bad_fraction=0.01)):
        (folder / f"{i:06d}-{packet.source}.packet").write_bytes(packet.payload)
    return count


# --- scenarios ---------------------------------------------------------------------------------------------


def reference(files: list[Path], out: Path) -> dict[str, Any]:
    """The same stage functions in a loop, no Beam: the yardstick for the pipeline's overhead."""
    from agents.base import AgentContext
    from agents.calls import AgentCaller, AgentPool
    from agents.registry import build_agent
    from config.settings import load_config
    from core.decisions import apply_cuts, classify, route
    from core.decoders import PacketDecoder
    from core.event import Event, Packet, utcnow
    from store.hot import HotStore, sqlite_url
    from store.tiers import PartitionIndex, write_archive_partition, write_warm_partition

    config = load_config()
    store = HotStore(sqlite_url(out / "nightwatch.db"))
    store.ensure_schema()
    context = AgentContext(config, store.url)
    callers = []
    for name, spec in config.agents.enabled().items():
        agent = build_agent(name, spec, context)
        agent.setup()
        callers.append(AgentCaller(agent))
    pool = AgentPool(callers)
    decoder = PacketDecoder(config.sources)
    cpu: dict[str, float] = defaultdict(float)
    events_out = 0
    pending: list[Event] = []
    zone = config.sources.site.timezone
    warm_index, archive_index = PartitionIndex("warm"), PartitionIndex("archive")

    def timed(stage: str, started: float) -> float:
        now = time.process_time()
        cpu[stage] += now - started
        return now

    def flush() -> None:
        started = time.process_time()
        store.add_events(pending)
        store.add_alerts([e for e in pending if e.alert_level in ("CRITICAL", "HIGH")])
        store.add_reviews([e for e in pending if e.alert_level == "MEDIUM"])
        started = timed("sink_hot", started)
        by_warm, by_archive = defaultdict(list), defaultdict(list)
        for event in pending:
            by_warm[(event.night, event.event_class)].append(event)
            by_archive[(event.night, event.source)].append(event)
        for (night, cls), batch in by_warm.items():
            write_warm_partition(str(out / "warm"), night, cls, batch, warm_index)
        started = timed("sink_warm", started)
        for (night, source), batch in by_archive.items():
            write_archive_partition(str(out / "archive"), night, source, batch, archive_index)
        timed("sink_archive", started)
        pending.clear()

    wall = time.perf_counter()
    cpu_start = time.process_time()
    for path in files:
        started = time.process_time()
        packet = Packet(payload=path.read_bytes(), origin=str(path), received_time=utcnow())
        started = timed("read", started)
        decoded = [item for item in decoder.decode(packet) if isinstance(item, Event)]
        started = timed("decode", started)
        decoded = [apply_cuts(event, config.filters) for event in decoded]
        started = timed("filter", started)
        decoded = [classify(event, config.classification) for event in decoded]
        started = timed("classify", started)
        decoded = [route(event, zone, "bench", "bench")[0] for event in decoded]
        timed("route", started)
        pending.extend(decoded)
        events_out += len(decoded)
        if len(pending) >= 500:
            started = time.process_time()
            pending[:] = pool.enrich(pending)[0]
            timed("agents", started)
            flush()
    if pending:
        started = time.process_time()
        pending[:] = pool.enrich(pending)[0]
        timed("agents", started)
        flush()
    wall = time.perf_counter() - wall
    pool.close()
    store.close()
    return {
        "packets": len(files),
        "events": events_out,
        "wall_s": round(wall, 3),
        "cpu_s": round(time.process_time() - cpu_start, 3),
        "packets_per_s": round(len(files) / wall, 1),
        "packets_per_cpu_s": round(len(files) / max(1e-9, time.process_time() - cpu_start), 1),
        "stage_cpu_us_per_event": {
            stage: round(seconds / max(1, events_out) * 1e6, 1) for stage, seconds in cpu.items()
        },
    }


def beam_batch(folder: Path, out: Path, workers: int, runner: str = "fnapi") -> dict[str, Any]:
    from pipeline.batch import run

    argv = [f"--input={folder}/*", f"--output={out}", f"--run_id=bench-{workers}", f"--direct_num_workers={workers}"]
    if runner == "dask":  # a local cluster of `workers` processes, started (and timed) with the run
        argv += ["--runner=pipeline.runners.dask.runner.NightwatchDaskRunner", f"--dask_npartitions={4 * workers}"]
    elif workers > 1:
        argv.append("--direct_running_mode=multi_processing")
    packets = len(list(folder.iterdir()))
    wall, cpu = time.perf_counter(), _cpu_s()
    summary = run(argv)
    wall, cpu = time.perf_counter() - wall, _cpu_s() - cpu
    return {
        "packets": packets,
        "events": sum(summary.by_class.values()),
        "workers": workers,
        "wall_s": round(wall, 3),
        "packets_per_s": round(packets / wall, 1),
        # On a shared machine the wall clock measures the neighbours too: CPU (this process and its finished
        # workers) per packet is the like-for-like figure.
        "cpu_s": round(cpu, 3),
        "packets_per_cpu_s": round(packets / cpu, 1) if cpu else None,
        "accounted": summary.accounted,
    }


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def scale(work: Path, sizes: list[int]) -> dict[str, Any]:
    """Beam, 1 worker, at each size: wall time per packet (µs), which stays flat if nothing grows with the input."""
    rows = []
    for count in sizes:
        folder = work / f"scale-{count}"
        write_packets(folder, count, seed=17)
        result = beam_batch(folder, work / f"scale-{count}-out", 1)
        rows.append(
            {
                "packets": count,
                "wall_s": result["wall_s"],
                "packets_per_s": result["packets_per_s"],
                "us_per_packet": round(result["wall_s"] / count * 1e6, 1),
                "accounted": result["accounted"],
            }
        )
    return {"sizes": rows}


def stream(out: Path, rate: float, steady_s: float, burst: int, cap_s: float) -> dict[str, Any]:
    """Steady publishing at `rate`, then a burst at once; latency from publish time to the hot store."""
    import numpy as np
    import sqlalchemy as sa
    import yaml

    from config.settings import CONFIG_DIR, load_config
    from core.event import as_utc, utcnow
    from devtools.pubsub import Emulator, PacketPublisher, ensure_topics
    from devtools.simulator import generate_packets
    from pipeline.streaming import run_stream
    from store.hot import HotStore
    from store.layout import Outputs
    from store.schema import dead_letters, events

    project = "nightwatch-bench"
    tag = uuid.uuid4().hex[:8]
    settings = yaml.safe_load((CONFIG_DIR / "streaming.yaml").read_text())
    settings["pubsub"].update(project=project, alerts_topic=f"bench-{tag}-alerts")
    settings["pubsub"]["topics"] = {source: f"bench-{tag}-{source}" for source in ("ztf", "rubin", "gcn")}
    folder = out / "config"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "streaming.yaml").write_text(yaml.safe_dump(settings))
    config = load_config(folder)
    outputs = Outputs.under(str(out), None)
    emulator = None if os.environ.get("PUBSUB_EMULATOR_HOST") else Emulator(project).start()
    try:
        ensure_topics(config.streaming.pubsub, project)
        started, stop = threading.Event(), threading.Event()
        job = threading.Thread(
            target=run_stream,
            args=([], config, outputs, project, None),
            kwargs={"started": started, "stop": stop, "drain_windows": False, "drain_timeout_s": 30.0},
            daemon=True,
        )
        # The load is made before the job starts and read from files while publishing: neither its making nor
        # its bytes count against the job (CPU, memory).
        steady = _packet_files(
            out / "steady", generate_packets(int(rate * steady_s), seed=11, start=utcnow(), span_s=steady_s)
        )
        visit = _packet_files(
            out / "visit", generate_packets(burst, seed=12, mix={"rubin": 1.0}, start=utcnow(), span_s=1.0)
        )
        job.start()
        if not started.wait(120):
            raise RuntimeError("the streaming job did not start")
        publisher = PacketPublisher(config.streaming.pubsub, project, outputs.db_url)
        began = time.monotonic()
        tick = max(1, round(rate / 10))  # ten batches a second, published concurrently within each
        for first in range(0, len(steady), tick):
            delay = began + first / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            publisher.publish(_outgoing(steady[first : first + tick]))
        steady_publish_s = time.monotonic() - began
        burst_at = utcnow()
        publisher.publish(_outgoing(visit))
        published_s = (utcnow() - burst_at).total_seconds()
        publisher.close()
        store = HotStore(outputs.db_url)
        deadline = time.monotonic() + cap_s
        expected = len(steady) + len(visit)
        while time.monotonic() < deadline and store.count(events) + store.count(dead_letters) < expected:
            time.sleep(1.0)
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(events.c.stored_at, events.c.payload)).all()
        store.close()
        stop.set()
        job.join(timeout=180)
    finally:
        if emulator is not None:
            emulator.stop()
    latencies, burst_within = [], 0
    stored_times = sorted(as_utc(row[0]) for row in rows)
    busy_s = (stored_times[-1] - stored_times[0]).total_seconds() if len(stored_times) > 1 else 0.0
    for stored_at, payload in rows:
        published = json.loads(payload).get("published_time")
        if published is None:
            continue
        sent = datetime.fromisoformat(published)
        latency = (as_utc(stored_at) - sent).total_seconds()
        latencies.append(latency)
        if sent >= burst_at and latency <= 60.0:
            burst_within += 1
    values = np.asarray(latencies, dtype=float)
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99])) if values.size else (None,) * 3
    return {
        "rate_per_s": rate,
        "steady_s": steady_s,
        "steady_packets": len(steady),
        "burst_packets": len(visit),
        "steady_publish_s": round(steady_publish_s, 2),  # over steady_s: the publisher could not keep the rate
        "burst_publish_s": round(published_s, 2),
        "stored": len(rows),
        "stored_of_published": round(len(rows) / expected, 4),
        # What the local job sustained: events stored per second between the first and the last store.
        "stored_per_s": round(len(rows) / busy_s, 1) if busy_s else None,
        "latency_p50_s": p50,
        "latency_p95_s": p95,
        "latency_p99_s": p99,
        "burst_share_in_60s": round(burst_within / len(visit), 4) if visit else None,
        "observed_cap_s": cap_s,
        "events_with_latency": len(latencies),
    }


def _packet_files(folder: Path, packets: Any) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, packet in enumerate(packets):
        path = folder / f"{i:06d}.{packet.source}"
        path.write_bytes(packet.payload)
        paths.append(path)
    return paths


def _outgoing(paths: list[Path]) -> Any:
    from core.event import utcnow
    from devtools.pubsub import OutgoingPacket

    for path in paths:  # the event time is now: live packets, as a survey sends them
        yield OutgoingPacket(path.suffix[1:], path.read_bytes(), utcnow())


def run_scenario(name: str, work: Path, size: dict[str, Any]) -> dict[str, Any]:
    folder = work / "packets"
    if name == "reference":
        result = reference(sorted(folder.iterdir()), work / "reference")
    elif name.startswith("beam-"):
        result = beam_batch(folder, work / name, int(name.split("-")[1]))
    elif name.startswith("dask-"):
        result = beam_batch(folder, work / name, int(name.split("-")[1]), runner="dask")
    elif name == "scale":
        result = scale(work, size["scale"])
    elif name == "stream":
        result = stream(work / "stream", size["rate"], size["steady_s"], size["burst"], size["cap_s"])
    else:
        raise ValueError(f"unknown scenario {name}")
    result["peak_rss_mib"] = peak_rss_mib(with_children=name != "stream")
    return result


# --- the whole benchmark -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import apache_beam
    import fastavro
    import pyarrow
    import sqlalchemy

    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "apache_beam": apache_beam.__version__,
            "pyarrow": pyarrow.__version__,
            "fastavro": fastavro.__version__,
            "sqlalchemy": sqlalchemy.__version__,
        },
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def judge(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each target with its measured figure and whether it is met."""
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, measured: float | None, at_least: bool = True) -> None:
        target = TARGETS[name]
        met = measured is not None and (measured >= target if at_least else measured <= target)
        checks[name] = {"target": target, "measured": measured, "met": met}

    one, two, ref = results.get("beam-1"), results.get("beam-2"), results.get("reference")
    if ref:
        check("reference_packets_per_s", ref["packets_per_s"])
    if one and ref:
        check("beam_over_reference", round(one["packets_per_s"] / ref["packets_per_s"], 3))
    if one and two:
        check("two_over_one_process", round(two["packets_per_s"] / one["packets_per_s"], 3))
    if "stream" in results:
        flow = results["stream"]
        check("stream_p50_s", flow["latency_p50_s"], at_least=False)
        check("stream_p99_s", flow["latency_p99_s"], at_least=False)
        check("burst_share_in_60s", flow["burst_share_in_60s"])
    peaks = [result["peak_rss_mib"] for name, result in results.items() if not name.startswith("dask")]
    check("peak_rss_gib", round(max(peaks) / 1024.0, 3) if peaks else None, at_least=False)
    return checks


# What production has to carry (BRIEF: scale to plan for). A night is taken as 10 hours.
SURVEYS = {
    "ZTF average (1M alerts a night)": 1_000_000 / 36_000,
    "Rubin average (10M alerts a night)": 10_000_000 / 36_000,
    "Rubin visit burst (98% of 40,000 in 60 s)": 40_000 * 0.98 / 60,
}
WORKER_VCPUS = 2  # an n2-standard-2 (Dataflow) or a 2-CPU task manager (Flink)
UTILISATION = 0.7  # headroom: the guide scales up at 80% CPU


def sizing(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Workers needed per survey load, from the measured cost of one event through the Beam pipeline (one
    process = one vCPU), with 30% headroom."""
    one = results.get("beam-1")
    if not one or not one.get("packets_per_s"):
        return []
    per_vcpu = float(one["packets_per_s"])
    rows = []
    for load, rate in SURVEYS.items():
        vcpus = rate / (per_vcpu * UTILISATION)
        rows.append(
            {
                "load": load,
                "packets_per_s": round(rate, 1),
                "vcpus": round(vcpus, 1),
                "workers": max(1, -(-int(vcpus * 10) // (WORKER_VCPUS * 10))),
            }
        )
    return rows


def table(report: dict[str, Any]) -> str:
    results = report["results"]
    lines = [
        f"Nightwatch bench ({report['size']}, {report['machine']['cpus']} cpus, Beam "
        f"{report['machine']['versions']['apache_beam']}) {report['started_at']}"
    ]
    before = report.get("before", {})
    when = before.get("started_at", "no earlier run")[:16]
    lines.append(
        f"{'scenario':<11}{'packets':>8}{'wall s':>9}{'pkts/s':>9}{'vs ref':>8}{'peak MiB':>10}"
        f"   before ({when}): pkts/s, vs ref, peak MiB"
    )
    ref = results.get("reference", {}).get("packets_per_s")
    old_results = before.get("results", {})
    old_ref = old_results.get("reference", {}).get("packets_per_s")
    for name in ("reference", "beam-1", "beam-2", "dask-2"):
        if name in results:
            r, old = results[name], old_results.get(name)
            ratio = f"{r['packets_per_s'] / ref:.2f}" if ref else "-"
            was = (
                f"{old['packets_per_s']:.1f}, {old['packets_per_s'] / old_ref:.2f}, {old['peak_rss_mib']:.0f}"
                if old and old_ref
                else "-"
            )
            per_cpu = r.get("packets_per_cpu_s")
            cpu = f"   ({per_cpu:.0f} packets per CPU-second)" if per_cpu else ""
            lines.append(
                f"{name:<11}{r['packets']:>8}{r['wall_s']:>9.2f}{r['packets_per_s']:>9.1f}{ratio:>8}"
                f"{r['peak_rss_mib']:>10.1f}   {was}{cpu}"
            )
    if "beam-1" in results and "beam-2" in results:
        two = results["beam-2"]["packets_per_s"] / results["beam-1"]["packets_per_s"]
        old_two = (
            old_results["beam-2"]["packets_per_s"] / old_results["beam-1"]["packets_per_s"]
            if "beam-1" in old_results and "beam-2" in old_results
            else None
        )
        lines.append(f"2 workers / 1: {two:.2f}" + (f" (before {old_two:.2f})" if old_two else ""))
    if "scale" in results:
        old_scale = {row["packets"]: row for row in old_results.get("scale", {}).get("sizes", [])}
        cells = []
        for row in results["scale"]["sizes"]:
            old = old_scale.get(row["packets"])
            cells.append(
                f"{row['packets']:,}: {row['us_per_packet']:.0f} µs"
                + (f" (before {old['us_per_packet']:.0f})" if old else "")
            )
        lines.append("Beam 1 worker, wall per packet by size: " + ", ".join(cells))
    if "stream" in results:
        r = results["stream"]
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        old = old_results.get("stream")
        if old:
            lines.append(
                f"stream before: stored {old['stored_per_s']}/s, p50 {fmt(old['latency_p50_s'])} s, "
                f"p99 {fmt(old['latency_p99_s'])} s, burst out in 60 s {old['burst_share_in_60s']:.1%}"
            )
        lines.append(
            f"stream     {r['steady_packets']} at {r['rate_per_s']}/s + burst {r['burst_packets']}: stored "
            f"{r['stored_of_published']:.1%} ({r['stored_per_s']}/s), latency p50 {fmt(r['latency_p50_s'])} s, "
            f"p95 {fmt(r['latency_p95_s'])} s, p99 {fmt(r['latency_p99_s'])} s, "
            f"burst out in 60 s {r['burst_share_in_60s']:.1%}, "
            f"peak {r['peak_rss_mib']:.0f} MiB"
        )
    if "reference" in results:
        stages = results["reference"]["stage_cpu_us_per_event"]
        lines.append("CPU per event (reference): " + ", ".join(f"{k} {v:.0f} µs" for k, v in stages.items()))
    if report.get("sizing"):
        lines.append(f"sizing (from beam-1: one vCPU each process; {WORKER_VCPUS}-vCPU workers at {UTILISATION:.0%}):")
        for row in report["sizing"]:
            lines.append(
                f"  {row['load']:<44}{row['packets_per_s']:>8.1f}/s  {row['vcpus']:>6.1f} vCPUs  "
                f"{row['workers']:>4} workers"
            )
    lines.append("targets:")
    for name, check in report["targets"].items():
        lines.append(f"  {'met ' if check['met'] else 'MISS'} {name}: {check['measured']} (target {check['target']})")
    return "\n".join(lines)


def bench(size_name: str, scenarios: list[str], results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    size = SIZES[size_name]
    started = datetime.now(timezone.utc)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nightwatch-bench-") as work_dir:
        work = Path(work_dir)
        write_packets(work / "packets", size["packets"])
        for name in scenarios:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            answer = work / f"{name}.json"
            # A process per scenario: its peak memory is its own, and no scenario warms another's caches.
            command = [
                sys.executable,
                "-m",
                "devtools.bench",
                "--scenario",
                name,
                "--work",
                str(work),
                "--size",
                size_name,
                "--json-out",
                str(answer),
            ]
            subprocess.run(command, check=True)
            results[name] = json.loads(answer.read_text())
    report = {
        "started_at": started.isoformat(),
        "size": size_name,
        "parameters": size,
        "machine": machine(),
        "results": results,
    }
    report["targets"] = judge(results)
    report["sizing"] = sizing(results)
    # The figures these replace: the last run of the same size, as committed (its own "before" is not kept).
    previous = results_dir / f"latest-{size_name}.json"
    if previous.exists():
        earlier = json.loads(previous.read_text())
        report["before"] = {key: earlier[key] for key in ("started_at", "results") if key in earlier}
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    for path in (results_dir / f"bench-{size_name}-{stamp}.json", results_dir / f"latest-{size_name}.json"):
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


ALL_SCENARIOS = ["reference", "beam-1", "beam-2", "dask-2", "scale", "stream"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--size", default="full", choices=sorted(SIZES))
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args(argv)
    result = run_scenario(args.scenario, Path(args.work), SIZES[args.size])
    Path(args.json_out).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
