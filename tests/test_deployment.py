"""`nightwatch deploy`: the guide's procedure end to end on the emulator with a staging and a production job, the
rollback when the smoke test fails, and the exact Dataflow and Flink commands of a dry run."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from access import accounts
from cli.main import main
from devtools.pubsub import Emulator
from ops.localjobs import LocalJobs, alive
from ops.procedure import last_runs
from store.hot import HotStore
from store.layout import Outputs
from tests.test_streaming import PROJECT, streaming_config

PASSWORD = "a-long-test-password"
PORT = 19721


def with_admin(folder) -> HotStore:
    store = HotStore(Outputs.under(str(folder), None).db_url)
    store.ensure_schema()
    accounts.bootstrap(store, "root", PASSWORD)
    accounts.create_user(store, "root", "adm", "admin", PASSWORD)
    return store


def deploy(tmp_path, config_dir, *extra: str) -> int:
    return main(
        [
            "deploy",
            "--as",
            "adm",
            "--config",
            str(config_dir),
            "--output",
            str(tmp_path / "out"),
            "--staging-output",
            str(tmp_path / "staging"),
            "--jobs-dir",
            str(tmp_path / "jobs"),
            "--project",
            PROJECT,
            "--tests-command",
            "true",
            "--settle",
            "2",
            *extra,
        ]
    )


def no_critical(config_dir) -> None:
    """A broken version: no rule makes anything critical (the smoke test's critical recall drops to 0)."""
    path = config_dir / "classification.yaml"
    from config.base import CONFIG_DIR

    rules = yaml.safe_load((CONFIG_DIR / "classification.yaml").read_text())
    for rule in rules["rules"]:
        if rule["class"] == "critical":
            rule["class"] = "significant"
    path.write_text(yaml.safe_dump(rules))


@pytest.mark.slow
def test_local_deployment_end_to_end_and_rollback_when_the_smoke_test_fails(tmp_path, capsys):
    streaming_config(tmp_path)  # tmp_path/config: topics of its own, small windows
    config_dir = tmp_path / "config"
    store = with_admin(tmp_path / "out")
    jobs = LocalJobs(tmp_path / "jobs", tmp_path)
    try:
        with Emulator(PROJECT, port=PORT):
            # First deployment: nothing runs yet; the procedure starts production.
            assert deploy(tmp_path, config_dir) == 0, capsys.readouterr().out
            first = jobs.running("production")
            assert first is not None and alive(first.pid)
            out = capsys.readouterr().out
            for step in (
                "run the tests",
                "announce",
                "deploy to staging",
                "smoke test",
                "update production",
                "watch the five panels",
                "injection test on production",
            ):
                assert f"[PASS] {step}" in out, out
            assert jobs.running("staging") is None  # staging stopped after its smoke test

            # Second deployment: the new job starts beside the old one, which drains.
            assert deploy(tmp_path, config_dir) == 0, capsys.readouterr().out
            second = jobs.running("production")
            assert second.pid != first.pid and not alive(first.pid)
            assert "old pid" in capsys.readouterr().out

            # A broken version: the smoke test fails on staging; production is never touched.
            broken = tmp_path / "broken"
            broken.mkdir()
            (broken / "streaming.yaml").write_text((config_dir / "streaming.yaml").read_text())
            no_critical(broken)
            assert deploy(tmp_path, broken) == 1
            out = capsys.readouterr().out
            assert "[FAIL] smoke test" in out and "critical recall 0%" in out
            assert "[SKIP] update production" in out and "[PASS] roll back" in out
            assert jobs.running("production").pid == second.pid and alive(second.pid)
            assert jobs.running("staging") is None

            runs = last_runs(store, "deploy")
            assert [run.passed for run in runs] == [False, True, True]
            assert [step["name"] for step in runs[0].steps][-1] == "roll back"
    finally:
        running = jobs.running("production")
        if running is not None:
            jobs.stop(running, 120)
        store.close()


def test_a_deployment_needs_an_admin_and_a_running_emulator(tmp_path, capsys, monkeypatch):
    store = with_admin(tmp_path / "out")
    accounts.create_user(store, "root", "ops", "operator", PASSWORD)
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    assert deploy(tmp_path, tmp_path) == 2
    assert "needs a running Pub/Sub emulator" in capsys.readouterr().err
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:19722")
    argv = ["deploy", "--as", "ops", "--output", str(tmp_path / "out"), "--tests-command", "true"]
    assert main(argv) == 2
    assert "configure system needs the Admin role" in capsys.readouterr().err
    store.close()


def dry_run(capsys, *argv: str) -> dict[str, list[str]]:
    assert main(["deploy", "--as", "adm", "--dry-run", *argv]) == 0
    steps, current = {}, None
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  "):
            steps[current].append(line.strip())
        elif line.endswith(":"):
            current = line[:-1]
            steps[current] = []
    return steps


def test_dataflow_and_flink_dry_runs_print_each_steps_exact_commands(tmp_path, capsys):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "deploy.yaml").write_text(
        yaml.safe_dump(
            {
                "version": "t",
                "tests_command": ["make", "test"],
                "dataflow": {
                    "project": "nw-prod",
                    "region": "europe-west1",
                    "temp_location": "gs://nw-prod-tmp/tmp",
                    "transform_name_mapping": {"Classify": "ApplyRules"},
                },
                "flink": {"flink_master": "jm:8081", "kafka_bootstrap": "kafka:9092", "savepoint_dir": "s3://b/sp"},
            }
        )
    )
    base = ["--config", str(config_dir), "--output", str(tmp_path / "out")]
    steps = dry_run(capsys, "--target", "dataflow", "--graph", "compatible", *base)
    assert steps["run the tests"] == ["make test"]
    (update,) = steps["update production"]
    assert update.startswith("nightwatch stream --runner dataflow --project nw-prod --region europe-west1")
    assert "--job_name=nightwatch-stream --update" in update
    assert """'--transform_name_mapping={"Classify": "ApplyRules"}'""" in update
    assert steps["smoke test (injection through the staging subscription)"][0].startswith(
        "nightwatch inject --through pubsub"
    )

    # The graph compared with the running job's steps: one unmapped step -> drain and replace.
    steps_file = tmp_path / "running-steps.json"
    assert (
        main(
            [
                "deploy",
                "--as",
                "adm",
                "--dry-run",
                "--target",
                "dataflow",
                "--save-steps",
                str(steps_file),
                "--graph",
                "compatible",
                *base,
            ]
        )
        == 0
    )
    saved = json.loads(steps_file.read_text())
    assert "Classify" in saved or any(name.endswith("Classify") for name in saved)
    capsys.readouterr()
    steps_file.write_text(json.dumps([*saved, "AStepThatIsGone"]))
    steps = dry_run(capsys, "--target", "dataflow", "--previous-steps", str(steps_file), *base)
    update = steps["update production"]
    assert update[0].startswith("gcloud dataflow jobs list --region=europe-west1 --project=nw-prod --status=active")
    assert update[1] == "gcloud dataflow jobs drain JOB_ID --region=europe-west1 --project=nw-prod"
    assert "--update" not in update[2]
    steps_file.write_text(json.dumps(saved))
    steps = dry_run(capsys, "--target", "dataflow", "--previous-steps", str(steps_file), *base)
    assert "--update" in steps["update production"][0]

    steps = dry_run(capsys, "--target", "flink", *base)
    assert steps["update production"] == [
        "flink savepoint -m jm:8081 JOB_ID s3://b/sp",
        "flink cancel -m jm:8081 JOB_ID",
        f"nightwatch stream --runner flink --flink-master jm:8081 --kafka-bootstrap kafka:9092 --config {config_dir} "
        "--savepoint_path=SAVEPOINT_PATH",
    ]


@pytest.mark.slow
def test_the_printed_dataflow_launch_translates_offline(tmp_path, capsys):
    """The printed launch is a command Nightwatch accepts: the Dataflow runner translates it with --dry-run.
    (`--update` and its mapping make Beam look the running job up, which needs the network: left out here.)"""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "deploy.yaml").write_text(
        yaml.safe_dump({"version": "t", "dataflow": {"project": "nw-prod", "temp_location": "gs://nw-prod-tmp/tmp"}})
    )
    base = ["--config", str(config_dir), "--output", str(tmp_path / "out")]
    argv = shlex.split(dry_run(capsys, "--target", "dataflow", "--graph", "compatible", *base)["update production"][0])
    argv = [arg for arg in argv[1:] if arg != "--update" and not arg.startswith("--transform_name_mapping")]
    assert main([*argv, "--dry-run", "--output", str(tmp_path / "out")]) == 0
    assert "dry run" in capsys.readouterr().out.lower()
