"""The schedule (issue 16.10): the guide's times in config/schedule.yaml, the same in the Kubernetes CronJobs,
the local scheduler (APScheduler) running entries on a short clock and recording each run and its outcome, the
checklist's owners and who ticked each item, and the console's Schedule page."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from access import accounts, audit
from cli.main import main
from config.schedule import ChecklistItem, ScheduleConfig, ScheduledJob, load_schedule
from ops import schedule
from store.hot import HotStore
from tests import test_dashboard
from tests.test_access import PASSWORD
from tests.test_dashboard import goto, login, texts

REPO = Path(__file__).resolve().parents[1]
console = test_dashboard.console  # the fixture: a copy of the simulated night with its people
MONDAY = datetime(2026, 11, 30, 0, 30, tzinfo=timezone.utc)


def cronjobs() -> dict[str, dict]:
    path = REPO / "deploy" / "kubernetes" / "cronjobs.yaml"
    return {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == "CronJob"}


def test_every_cronjob_runs_its_entry_on_the_configured_schedule():
    config = load_schedule()
    found = cronjobs()
    entries = schedule.jobs(config)
    assert set(found) == {f"nightwatch-{job.name}" for job in entries}
    for job in entries:
        spec = found[f"nightwatch-{job.name}"]["spec"]
        every = config.jobs[job.name].every_min if job.name in config.jobs else None
        assert spec["schedule"] == (f"*/{every:g} * * * *" if every else job.schedule), job.name
        assert spec["timeZone"] == config.timezone and spec["concurrencyPolicy"] == "Forbid"
        [container] = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        # Through the scheduler's own runner, so a CronJob's run is recorded like a local one.
        assert container["args"][:4] == ["nightwatch", "scheduler", "run", job.name]


def test_the_schedule_is_the_guides():
    config = load_schedule()
    checklist = [(item.time, item.task, item.owner) for item in config.checklist]
    assert checklist == [
        ("06:00", "Review overnight alerts", "On-call"),
        ("06:00", "Check system health dashboard", "On-call"),
        ("09:00", "Review processing metrics", "Ops team"),
        ("18:00", "Pre-night health check", "On-call"),
        ("22:00", "Confirm night processing started", "On-call"),
    ]
    # Over a year from a Monday: the daily backup and retention every day, the index rebuild weekly, the access
    # review quarterly, the checklist at its four times each day.
    fires = schedule.next_runs(config, MONDAY, count=400)
    year = [(when, job) for when, job in fires if when < MONDAY + timedelta(days=365)]
    per_job = {job.name: sum(1 for _, j in year if j.name == job.name) for job in schedule.jobs(config)}
    assert per_job["backup"] == 365 and per_job["retention"] == 365
    assert per_job["index-rebuild"] == 52 and per_job["access-review"] == 4
    assert {when.strftime("%H:%M") for when, job in year if job.kind == "checklist"} == {
        "06:00",
        "09:00",
        "18:00",
        "22:00",
    }


@pytest.mark.slow  # each run is a `nightwatch` process of its own: ~40 s on a loaded machine
def test_the_scheduler_runs_entries_on_a_short_clock_and_records_each_outcome(tmp_path):
    url = f"sqlite:///{tmp_path}/nightwatch.db"
    store = HotStore(url)
    store.ensure_schema()
    config = ScheduleConfig(
        jobs={
            "backup": ScheduledJob(every_min=0.02, command=["backup"], what="backup every 1.2 s"),
            "broken": ScheduledJob(every_min=0.02, command=["retention", "--now", "not a time"], what="fails"),
        }
    )

    def argv(job: schedule.Job) -> list[str]:
        return [*job.command, "--output", str(tmp_path), "--db-url", url]

    runner = schedule.scheduler(config, store, argv)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            finished = [r for r in schedule.recent_runs(store) if r["outcome"] != "running"]
            if {r["job"] for r in finished} == {"backup", "broken"}:
                break
            time.sleep(0.2)
    finally:
        runner.shutdown(wait=True)
    runs = {row["job"]: row for row in reversed(schedule.recent_runs(store))}
    assert runs["backup"]["outcome"] == "ok" and runs["backup"]["exit_code"] == 0
    assert "backup written to" in runs["backup"]["detail"]
    assert list((tmp_path / "backups").glob("nightwatch-*.sqlite.json"))
    assert runs["broken"]["outcome"] == "failed" and runs["broken"]["exit_code"] == 2
    assert "--now" in runs["broken"]["detail"]
    assert all(row["started_at"] <= row["finished_at"] for row in runs.values())
    store.close()


@pytest.fixture
def people(tmp_path):
    url = f"sqlite:///{tmp_path}/out/nightwatch.db"
    store = HotStore(url)
    store.ensure_schema()
    accounts.bootstrap(store, "root", PASSWORD)
    for name, role in (("obs", "observer"), ("ops", "operator")):
        accounts.create_user(store, "root", name, role, PASSWORD)
    yield url, store
    store.close()


def test_checklist_items_show_their_owner_and_who_did_them(people, tmp_path, capsys):
    url, store = people
    out = str(tmp_path / "out")
    item = ChecklistItem(time="06:00", task="Review overnight alerts", owner="On-call", command=[]).name
    assert main(["scheduler", "done", item, "--as", "ops", "--db-url", url]) == 2  # its check has not run today
    assert "run its check first" in capsys.readouterr().err
    # The check runs (here by hand; at 06:00 the scheduler or the CronJob does it) and is recorded.
    assert main(["scheduler", "run", item, "--output", out, "--db-url", url]) in (0, 1)
    capsys.readouterr()
    assert main(["scheduler", "done", item, "--as", "obs", "--db-url", url]) == 2  # an Observer may not
    assert "needs the Operator role" in capsys.readouterr().err
    assert main(["scheduler", "done", item, "--as", "ops", "--note", "quiet night", "--db-url", url]) == 0
    assert main(["scheduler", "checklist", "--db-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    reviewed = next(line for line in lines if "Review overnight alerts" in line)
    assert "owner On-call" in reviewed and "done by ops" in reviewed
    assert "owner Ops team" in next(line for line in lines if "Review processing metrics" in line)
    entry = audit.audit_entries(store, action="checklist.done")[0]
    assert entry.actor == "ops" and entry.target == item and entry.after["note"] == "quiet night"
    assert main(["scheduler", "done", item, "--as", "ops", "--db-url", url]) == 2  # once a day
    assert "already marked done today by ops" in capsys.readouterr().err


def test_the_console_shows_the_next_runs_and_the_checklist(console):
    item = load_schedule().checklist[2]  # 09:00 review processing metrics, Ops team
    job = next(j for j in schedule.jobs(load_schedule()) if j.name == item.name)
    schedule.finish_run(console, schedule.start_run(console, job, datetime.now(timezone.utc)), 0, "all checks passed")
    at = goto(login("ops"), "Schedule")
    tables = [frame.value for frame in at.dataframe]
    checklist, upcoming = tables[0], tables[1]
    row = checklist[checklist["Task"] == "Review processing metrics"].iloc[0]
    assert row["Owner"] == "Ops team" and row["Check"] == "ok" and row["Done by"] == ""
    assert set(upcoming["Entry"]) >= {"backup", "retention", "index-rebuild", "access-review", item.name}
    at.selectbox[0].set_value(item.name)
    at.text_input[0].input("metrics normal")
    at.button[0].click().run()
    assert "done by ops" in texts(at)
    assert schedule.checklist_today(console, load_schedule())[2]["done_by"] == "ops"
