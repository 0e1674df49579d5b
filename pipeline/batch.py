"""Running a batch job: options in, pipeline run, a summary out that accounts for every event."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from agents.summary import STATUSES, brief, tallies
from config.limits import file_mode, tighten
from config.settings import CLASSES, NightwatchConfig, load_config
from core import names
from core.event import utcnow
from core.logs import log_event
from ops.levels import level_totals
from ops.workers import Heartbeat
from pipeline.graph import build_pipeline, read_packets
from pipeline.options import NightwatchOptions
from store.configs import in_force
from store.hot import HotStore
from store.layout import Outputs
from transforms.common import local_counts, reset_local_counts

log = logging.getLogger("nightwatch")

# Stages after which an event never reached the events table: these dead letters replace a class.
LOSING_STAGES = names.LOSING_STAGES


@dataclass
class RunSummary:
    run_id: str
    counters: dict[str, int]
    outputs: dict[str, str]
    started_at: str
    finished_at: str
    problems: list[str] = field(default_factory=list)
    top_alerts: list[str] = field(default_factory=list)
    # One count per level of this run's events as stored (ops.levels, as the portal, monitor and API count them:
    # association raises and promotions included, a redelivered packet once); None when the store was not read.
    levels: dict[str, int] | None = None

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)

    @property
    def received(self) -> int:
        return self.count(names.RECEIVED)

    @property
    def by_class(self) -> dict[str, int]:
        return {name: self.count(names.stored(name)) for name in CLASSES}

    @property
    def dead_letters(self) -> dict[str, int]:
        fallback = names.DEAD_LETTERS_FALLBACK.removeprefix(names.dead_letters(""))
        return {
            stage: value for stage, value in names.parts(self.counters, names.dead_letters).items() if stage != fallback
        }

    @property
    def lost_to_dead_letters(self) -> int:
        return sum(value for stage, value in self.dead_letters.items() if stage in LOSING_STAGES)

    @property
    def accounted(self) -> bool:
        return self.received == sum(self.by_class.values()) + self.lost_to_dead_letters

    @property
    def ok(self) -> bool:
        return self.accounted and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "packets": self.count(names.PACKETS),
            "received": self.received,
            "received_by_source": names.parts(self.counters, names.received),
            "by_class": self.by_class,
            "alerts": {
                "CRITICAL": self.count(names.alert_level("CRITICAL")),
                "HIGH": self.count(names.alert_level("HIGH")),
                "new": self.count(names.new(names.ALERTS)),
                "already_stored": self.count(names.already_stored(names.ALERTS)),
            },
            "review_queue": {
                "new": self.count(names.new(names.REVIEW)),
                "already_stored": self.count(names.already_stored(names.REVIEW)),
            },
            "low": self.by_class["routine"],
            "levels": self.levels,
            "dead_letters": self.dead_letters,
            "events_new": self.count(names.new(names.EVENTS)),
            "events_already_stored": self.count(names.already_stored(names.EVENTS)),
            "warm_rows_written": self.count(names.rows(names.WARM)),
            "archive_records_written": self.count(names.rows(names.ARCHIVE)),
            "agents": tallies(self.counters),
            "notifications": names.parts(self.counters, names.notified),
            "accounting": {
                "received": self.received,
                "classified": sum(self.by_class.values()),
                "dead_lettered": self.lost_to_dead_letters,
                "balanced": self.accounted,
            },
            "problems": self.problems,
            "outputs": self.outputs,
        }

    def table(self) -> str:
        data = self.as_dict()
        rows: list[tuple[str, str]] = [
            ("run", self.run_id),
            ("packets read", str(data["packets"])),
            ("events received", f"{self.received}  ({_pairs(data['received_by_source'])})"),
        ]
        rows += [(f"  {name}", str(value)) for name, value in self.by_class.items()]
        queued = f"{data['review_queue']['new']} new, {data['review_queue']['already_stored']} already queued"
        if self.levels is None:  # the store could not be read: what the steps counted
            levels = {**data["alerts"], "LOW": self.by_class["routine"]}
        else:
            levels = self.levels
            queued = f"{levels['MEDIUM']} at MEDIUM ({queued})"
        rows += [
            ("alerts CRITICAL / HIGH", f"{levels['CRITICAL']} / {levels['HIGH']}"),
            ("review queue (MEDIUM)", queued),
            ("routine (LOW, archived)", str(levels["LOW"])),
            ("dead letters", f"{sum(self.dead_letters.values())}  ({_pairs(self.dead_letters) or 'none'})"),
            ("hot store new / already stored", f"{data['events_new']} / {data['events_already_stored']}"),
            ("warm rows / archive records written", f"{data['warm_rows_written']} / {data['archive_records_written']}"),
            (
                "accounting",
                f"{'OK' if self.accounted else 'MISMATCH'}: received {self.received} = "
                f"classified {sum(self.by_class.values())} + dead-lettered {self.lost_to_dead_letters}",
            ),
        ]
        for agent, outcome in data["agents"].items():
            called = sum(outcome.values())
            rows.append((f"agent {agent}", f"{called} events: " + ", ".join(f"{outcome[s]} {s}" for s in STATUSES)))
        idle = "none: no channel configured (config/notifications.yaml)" if data["alerts"]["new"] else "no new alerts"
        rows.append(("notifications", _pairs(data["notifications"]) or idle))
        rows += [(f"output: {name}", where) for name, where in self.outputs.items()]
        rows += [("PROBLEM", problem) for problem in self.problems]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _pairs(mapping: dict[str, int]) -> str:
    return ", ".join(f"{name} {value}" for name, value in mapping.items())


def counters_of(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(names.METRICS_NAMESPACE))
    totals: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def pipeline_options(argv: list[str]) -> PipelineOptions:
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        # The plain DirectRunner first tries to download Prism; name the in-process batch runner instead.
        standard.runner = "FnApiRunner"
    return options


def run(argv: list[str]) -> RunSummary:
    """Run the batch pipeline with Beam-style arguments; return the summary (also stored as a run).

    Everything it writes (hot store, tiers, dead letters) is created with the configured file mode, owner-only
    by default (config/limits.yaml `files.mode`; the process umask during the run).
    """
    options = pipeline_options(argv)
    opts = options.view_as(NightwatchOptions)
    config = load_config(opts.config_dir)
    with file_mode(config.limits.files):
        return _run(options, opts, config)


def _run(options: PipelineOptions, opts: NightwatchOptions, config: NightwatchConfig) -> RunSummary:
    outputs = Outputs.under(opts.output, opts.db_url)
    run_id = opts.run_id or f"run-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    if opts.input and not FileSystems.match([opts.input])[0].metadata_list:
        raise FileNotFoundError(f"no packet files match --input {opts.input!r}")

    store = HotStore(outputs.db_url)
    store.ensure_schema()
    if store.engine.dialect.name == "sqlite" and store.engine.url.database:
        tighten(store.engine.url.database, config.limits.files)  # a store made earlier with a looser umask
    # The configuration in force at the start (the console's documents over the files); steps re-read it live.
    config = in_force(config, store)
    started = utcnow()
    log_event(log, "run_start", f"batch run {run_id} started", run_id=run_id, mode="batch")
    mix = None
    if opts.mix:
        from devtools.simulator import parse_mix

        mix = parse_mix(opts.mix)
    elif opts.night:
        from devtools.simulator.night import night_mix

        mix = night_mix(_expected(config))
    reset_local_counts()
    # The batch job's heartbeat (`nightwatch workers`): this process's tally, every few seconds, then `stopped`.
    heartbeat = Heartbeat(outputs.db_url, "batch", _beat_sample, run_id)
    with heartbeat, beam.Pipeline(options=options) as p:
        if opts.replay_archive:
            from pipeline.io.replay import ReadArchive

            packets = p | "ReadPackets" >> ReadArchive(opts.replay_archive, replay_range(opts))
        else:
            packets = read_packets(
                p,
                opts.input,
                opts.simulate,
                opts.injected,
                config.limits.input,
                seed=opts.seed,
                mix=mix,
                bad_fraction=opts.bad_fraction,
                night=_night(config, opts.simulate) if opts.night else None,
            )
        build_pipeline(packets, config, outputs, run_id)
    result = p.result  # the with-block ran the pipeline and waited for it
    finished = utcnow()

    summary = RunSummary(
        run_id=run_id,
        counters=counters_of(result),
        outputs={
            "hot store": outputs.db_url,
            "warm (Parquet)": outputs.warm_root,
            "archive (Avro)": outputs.archive_root,
            "dead-letter fallback": outputs.dead_letter_root,
        },
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
    )
    failed_outputs = names.parts(summary.counters, names.sink_failed)
    if failed_outputs:
        summary.problems.append(f"some outputs failed and were dead-lettered: {_pairs(failed_outputs)}")
    if summary.count(names.DEAD_LETTERS_FALLBACK):
        summary.problems.append(
            f"{summary.count(names.DEAD_LETTERS_FALLBACK)} dead letters could not reach the hot store; "
            f"see {outputs.dead_letter_root}"
        )
    if not summary.accounted:
        summary.problems.append("accounting mismatch: some events are neither classified nor dead-lettered")
    summary.levels = level_totals(store, run_id)
    summary.top_alerts = [
        f"{line}\n      {brief(found)}" if found else line for line, found in store.top_alerts(run_id)
    ]
    store.record_run(run_id, started, finished, summary.as_dict())
    store.close()
    log_event(
        log,
        "run_end",
        f"batch run {run_id} finished: received {summary.count(names.RECEIVED)}, "
        f"dead letters {summary.count(names.DEAD_LETTERS)}, {'OK' if summary.ok else 'problems'}",
        run_id=run_id,
        mode="batch",
        received=summary.count(names.RECEIVED),
        dead_letters=summary.count(names.DEAD_LETTERS),
        ok=summary.ok,
    )
    return summary


def _expected(config: NightwatchConfig) -> dict[str, float]:
    return {name: spec.expected_rate_per_min for name, spec in config.sources.sources.items()}


def _night(config: NightwatchConfig, count: int) -> dict[str, Any]:
    """A simulated night's classes, and event times spread at the configured rates (`count` packets' worth)."""
    from devtools.simulator.night import NIGHT_CLASS_WEIGHTS, night_rate_per_s

    return {"class_weights": NIGHT_CLASS_WEIGHTS, "span_s": count / night_rate_per_s(_expected(config))}


def _beat_sample() -> dict[str, Any]:
    counts = local_counts()
    processed = names.total(counts, names.stored)
    dead = counts.get(names.DEAD_LETTERS, 0)
    return {
        "processed": processed,
        "errors": dead,
        "backlog": max(0, counts.get(names.RECEIVED, 0) - processed - dead),
        "received": counts.get(names.RECEIVED, 0),
    }


def replay_range(opts: NightwatchOptions):
    from core.decoders.common import parse_iso_utc
    from pipeline.io.replay import ReplayRange

    if not (opts.replay_start and opts.replay_end):
        raise ValueError("a replay needs --start and --end")
    span = ReplayRange(
        parse_iso_utc(opts.replay_start, "--start"), parse_iso_utc(opts.replay_end, "--end"), opts.replay_source
    )
    if span.end <= span.start:
        raise ValueError("--end must be after --start")
    return span


def write_summary_json(summary: RunSummary, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n")
