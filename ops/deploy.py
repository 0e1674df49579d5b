"""`nightwatch deploy`: the guide's deployment procedure for the job itself, step by step, rolled back on failure.

Tests -> announce (a maintenance window of deploy.yaml's type) -> a staging job -> smoke test (the injection
test through the staging subscription) -> production -> watch the five panels for the settle period -> the
injection test on production. A failure before production stops the staging job and leaves production as it
was; a failure after it puts the previous production job back (the automatic rollback). Every step is printed
as it goes and stored (`ops.procedure`).

Targets: `local` runs it end to end on the Pub/Sub emulator with two local jobs (staging and production
subscriptions). `dataflow` and `flink` build the exact commands of each step (`--dry-run` prints them): Dataflow
updates in place with the transform-name mapping, or drains and replaces when the graph is incompatible; Flink
takes a savepoint, stops the job and starts the new one from the savepoint.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from access.accounts import acting
from config.settings import NightwatchConfig
from core.event import utcnow
from ops import inject, maintenance
from ops.health.evaluate import evaluate
from ops.localjobs import LocalJob, LocalJobs, config_variant, tail
from ops.procedure import Outcome, Procedure, StepFailed
from store.hot import HotStore
from store.layout import Outputs

PERMISSION = "configure_system"  # deploying the job is system configuration: Admin


@dataclass
class LocalPlan:
    """Where a local deployment's jobs read and write."""

    config_dir: str | None  # the new version's configuration (None: the shipped one)
    output: str  # production's output folder (its hot store, tiers)
    staging_output: str
    project: str
    jobs_dir: Path
    repo: Path
    env: dict[str, str] = field(default_factory=dict)


def run_tests(command: list[str], repo: Path) -> Outcome:
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)  # noqa: S603
    last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["(no output)"]
    return Outcome(done.returncode == 0, f"`{shlex.join(command)}` exited {done.returncode}: {last[0]}")


def announce(store: HotStore, config: NightwatchConfig, actor: str, reason: str) -> Outcome:
    settings = config.deploy
    spec = config.maintenance.types.get(settings.window_type)
    if spec is None:
        raise StepFailed(f"deploy.yaml window_type {settings.window_type!r} is not a maintenance.yaml type")
    now = utcnow()
    minutes = (settings.settle_s + 2 * settings.injection_timeout_s + settings.start_timeout_s) / 60 + 5
    window = maintenance.announce(
        store, config.maintenance, actor, settings.window_type, now, now + timedelta(minutes=minutes), reason, now
    )
    silence = "silences non-critical pages" if window.silence else "silences nothing"
    return Outcome(
        True, f"maintenance window {window.window_id} ({spec.title}) until {window.ends_at:%H:%M} UTC; {silence}"
    )


def injection_test(
    config: NightwatchConfig, project: str, db_url: str, count: int, timeout_s: float, seed: int
) -> Outcome:
    """The injection test through Pub/Sub, scored on the store of the job that should have decided them."""
    packets = inject.make_packets(count, inject.DEFAULT_CLASS_MIX, seed)
    expected = inject.expected_classes(packets, config)
    store = HotStore(db_url)
    try:
        inject.through_pubsub(packets, expected, config, project, store, timeout_s)
        report = inject.score(store, expected, inject.new_report_id(), "pubsub")
        inject.save(store, report)
    finally:
        store.close()
    recall = "n/a" if report.critical_recall is None else f"{report.critical_recall:.0%}"
    evidence = (
        f"{report.injected} injected, {len(report.missing)} never stored, critical recall {recall}: {report.reason}"
    )
    return Outcome(report.passed and not report.missing, evidence, {"report_id": report.report_id})


def settle(
    store: HotStore, config: NightwatchConfig, seconds: float, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """Watch the five panels for `seconds`: any gating panel turning bad fails the step."""
    settings, looks = config.deploy, 0
    deadline = time.monotonic() + seconds
    while True:
        report = evaluate(store, config, utcnow())
        looks += 1
        bad = [
            f"{p.name} {p.display or p.value}" for p in report.panels if p.name in settings.gate_panels and p.abnormal
        ]
        if bad:
            return Outcome(False, f"panel out of range after {looks} look(s): {', '.join(bad)}")
        if time.monotonic() >= deadline:
            shown = ", ".join(f"{p.name}: {p.status}" for p in report.panels)
            return Outcome(True, f"{looks} look(s) over {seconds:.0f} s; {shown}")
        sleep(min(settings.poll_s, max(0.0, deadline - time.monotonic())))


def deploy_local(
    store: HotStore,
    config: NightwatchConfig,
    actor: str,
    plan: LocalPlan,
    reason: str,
    progress: Callable[[str], None] = print,
) -> Procedure:
    """The whole procedure against local jobs; returns the recorded run (its `failed` says how it ended)."""
    acting(store, actor, PERMISSION)
    from devtools.pubsub import ensure_topics  # the emulator's topics and both jobs' subscriptions

    settings = config.deploy
    jobs = LocalJobs(plan.jobs_dir, plan.repo, plan.env)
    run = Procedure(
        store,
        "deploy",
        actor,
        progress,
        details={"target": "local", "config": plan.config_dir, "output": plan.output, "reason": reason},
    )
    state: dict[str, LocalJob | None] = {"staging": None, "new": None, "old": jobs.running("production")}
    staging_dir = config_variant(plan.config_dir, plan.jobs_dir / "staging-config", settings.staging_suffix)
    production_dir = config_variant(plan.config_dir, plan.jobs_dir / f"production-config-{run.run_id}")
    staging_db = Outputs.under(plan.staging_output, None).db_url

    run.step("run the tests", lambda: run_tests(settings.tests_command, plan.repo))
    run.step("announce", lambda: announce(store, config, actor, reason))

    def to_staging() -> Outcome:
        from config.settings import load_config

        staging_config = load_config(staging_dir)
        ensure_topics(staging_config.streaming.pubsub, plan.project)
        ensure_topics(config.streaming.pubsub, plan.project)  # production's subscriptions keep what arrives too
        state["staging"] = jobs.start(
            "staging", str(staging_dir), plan.staging_output, plan.project, settings.start_timeout_s
        )
        jobs.record(state["staging"], "staging")
        return Outcome(True, f"staging job pid {state['staging'].pid} on *{settings.staging_suffix} -> {staging_db}")

    run.step("deploy to staging", to_staging)
    run.step(
        "smoke test (injection through the staging subscription)",
        lambda: injection_test(
            config, plan.project, staging_db, settings.injection_count, settings.injection_timeout_s, seed=101
        ),
    )
    if state["staging"] is not None:  # its smoke test done (or failed): staging is not kept running
        jobs.stop(state["staging"], settings.stop_timeout_s)
        jobs.record(None, "staging")

    def to_production() -> Outcome:
        state["new"] = jobs.start(
            "production", str(production_dir), plan.output, plan.project, settings.start_timeout_s
        )
        jobs.record(state["new"], "production")
        old = state["old"]
        if old is None:
            return Outcome(True, f"production job pid {state['new'].pid} started (no job was running)")
        drained = jobs.stop(old, settings.stop_timeout_s)
        how = "drained" if drained else "did not drain in time and was killed"
        return Outcome(drained, f"new production job pid {state['new'].pid} reading; old pid {old.pid} {how}")

    # Each step runs only if every one before it passed (the procedure skips the rest after a failure).
    run.step("update production", to_production)
    run.step("watch the five panels", lambda: settle(store, config, settings.settle_s))
    production_db = Outputs.under(plan.output, None).db_url
    run.step(
        "injection test on production",
        lambda: injection_test(
            config, plan.project, production_db, settings.injection_count, settings.injection_timeout_s, seed=202
        ),
    )
    if run.failed:
        run.stop_on_failure = False
        run.step(
            "roll back",
            lambda: _roll_back_local(jobs, state, plan, settings.start_timeout_s, settings.stop_timeout_s),
        )
    run.finish()
    return run


def _roll_back_local(jobs: LocalJobs, state: dict, plan: LocalPlan, start_s: float, stop_s: float) -> Outcome:
    old, new = state["old"], state["new"]
    if new is None:
        return Outcome(True, "staging stopped; production untouched (still the previous job)")
    parts = []
    if old is not None:
        back = jobs.start("production", old.config_dir, old.output, plan.project, start_s)
        jobs.record(back, "production")
        parts.append(f"previous version started again (pid {back.pid}, config {old.config_dir})")
    jobs.stop(new, stop_s)
    parts.append(f"new job pid {new.pid} drained ({tail(Path(new.log), 1)})")
    if old is None:
        jobs.record(None, "production")
    return Outcome(True, "; ".join(parts))


# --- Dataflow and Flink: the steps' exact commands --------------------------------------------------------------


def _nightwatch(*args: str) -> list[str]:
    return ["nightwatch", *args]


def production_commands(
    target: str, config: NightwatchConfig, config_dir: str, incompatible: bool, previous_dir: str | None
) -> dict[str, list[list[str]]]:
    """Each step's commands for Dataflow or Flink, in order: what `--dry-run` prints and a real run executes."""
    settings = config.deploy
    cfg = ["--config", config_dir]
    if target == "dataflow":
        flow = settings.dataflow
        where = [
            "--runner",
            "dataflow",
            "--project",
            flow.project,
            "--region",
            flow.region,
            "--temp-location",
            flow.temp_location,
        ]
        mapping = json.dumps(flow.transform_name_mapping, sort_keys=True)
        launch = _nightwatch("stream", *where, *cfg, f"--job_name={flow.job_name}")
        find = [
            "gcloud",
            "dataflow",
            "jobs",
            "list",
            f"--region={flow.region}",
            f"--project={flow.project}",
            "--status=active",
            f"--filter=name={flow.job_name}",
            "--format=value(id)",
        ]
        if incompatible:
            update = [
                find,
                [
                    "gcloud",
                    "dataflow",
                    "jobs",
                    "drain",
                    "JOB_ID",
                    f"--region={flow.region}",
                    f"--project={flow.project}",
                ],
                launch,
            ]
        else:
            update = [launch + ["--update", f"--transform_name_mapping={mapping}"]]
        back = previous_dir or "PREVIOUS_CONFIG"
        rollback = [
            _nightwatch(
                "stream",
                *where,
                "--config",
                back,
                f"--job_name={flow.job_name}",
                "--update",
                "--transform_name_mapping={}",
            )
        ]
        staging = [
            _nightwatch("stream", *where, "--config", f"{config_dir}-staging", f"--job_name={flow.staging_job_name}")
        ]
        smoke = [
            _nightwatch(
                "inject",
                "--through",
                "pubsub",
                "--project",
                flow.project,
                "--config",
                f"{config_dir}-staging",
                "--db-url",
                "STAGING_DB_URL",
            )
        ]
        verify = [_nightwatch("inject", "--through", "pubsub", "--project", flow.project, *cfg)]
    else:
        flink = settings.flink
        where = ["--runner", "flink", "--flink-master", flink.flink_master, "--kafka-bootstrap", flink.kafka_bootstrap]
        client = [flink.flink_bin]
        update = [
            client + ["savepoint", "-m", flink.flink_master, "JOB_ID", flink.savepoint_dir],
            client + ["cancel", "-m", flink.flink_master, "JOB_ID"],
            _nightwatch("stream", *where, *cfg, "--savepoint_path=SAVEPOINT_PATH"),
        ]
        rollback = [
            _nightwatch(
                "stream", *where, "--config", previous_dir or "PREVIOUS_CONFIG", "--savepoint_path=SAVEPOINT_PATH"
            )
        ]
        staging = [_nightwatch("stream", *where, "--config", f"{config_dir}-staging")]
        smoke = [
            _nightwatch(
                "inject", "--through", "pubsub", "--config", f"{config_dir}-staging", "--db-url", "STAGING_DB_URL"
            )
        ]
        verify = [_nightwatch("inject", "--through", "pubsub", *cfg)]
    return {
        "run the tests": [settings.tests_command],
        "announce": [
            _nightwatch("maintenance", "announce", settings.window_type, "--as", "USER", "--reason", "deployment")
        ],
        "deploy to staging": staging,
        "smoke test (injection through the staging subscription)": smoke,
        "update production": update,
        "watch the five panels": [_nightwatch("health", "--json")],
        "injection test on production": verify,
        "roll back (on failure)": rollback,
    }


def incompatible_steps(previous: list[str], current: list[str], mapping: dict[str, str]) -> list[str]:
    """Steps of the running graph that the new graph neither keeps nor maps: Dataflow refuses such an update."""
    kept = set(current)
    return [name for name in previous if name not in kept and mapping.get(name) not in kept]
