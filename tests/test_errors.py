"""Known failures are one line naming the cause and the fix, with the README's exit codes (0 ok, 1 failure, 2
usage or configuration; `health`: 5, it could not check), never a traceback. And a dead letter from a failed
write is resolved when a later run stores its event."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest
import sqlalchemy as sa

from cli.common import EXIT_CANNOT_CHECK, known_failure
from ops.checklist import processing_metrics
from ops.verify import unresolved_write_failures
from pipeline.batch import run
from store.events import EventQueries
from store.hot import HotStore
from store.schema import dead_letters, events
from tests.conftest import DATA, REPO

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nightwatch"  # nothing listens on port 1


def nightwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def one_line(result: subprocess.CompletedProcess, *words: str) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("nightwatch: error:")]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    (root / "a-file").write_text("not a folder")
    bad = root / "bad-config"
    bad.mkdir()
    (bad / "notifications.yaml").write_text("version: [\n")
    return root


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["verify", f"--db-url={UNREACHABLE}"], 1, ["hot store unreachable", "Connection refused", "--db-url"]),
        (["users", "list", f"--db-url={UNREACHABLE}"], 1, ["hot store unreachable", "--db-url"]),
        (["run", "--simulate=5", f"--db-url={UNREACHABLE}"], 1, ["hot store unreachable"]),
        (["health", f"--db-url={UNREACHABLE}"], EXIT_CANNOT_CHECK, ["hot store unreachable"]),
        (["run", "--simulate=5", "--output={root}/a-file/out"], 1, ["cannot write", "a-file", "--output"]),
        (["alerts", "check", "--output={root}/a-file/out"], 1, ["cannot write", "--output"]),
        (["run", "--simulate=5", "--output={root}/out", "--config={root}/bad-config"], 2, ["bad configuration"]),
        (["health", "--output={root}/out", "--config={root}/no-such-folder"], EXIT_CANNOT_CHECK, ["no such"]),
        (["notify", "status", "--output={root}/out", "--config={root}/bad-config"], 2, ["notifications.yaml"]),
    ],
)
def test_a_known_failure_is_one_line_and_its_exit_code(places, args, code, words):
    result = nightwatch(*(arg.format(root=places) for arg in args))
    line = one_line(result, *words)
    assert result.returncode == code, (result.returncode, line)


def test_a_full_disk_is_a_failure_not_a_usage_error():
    line, code = known_failure(OSError(errno.ENOSPC, "No space left on device", "/data/out/warm/x.parquet"))
    assert code == 1 and "disk full" in line and "/data/out/warm/x.parquet" in line
    sqlite_full = sa.exc.OperationalError("INSERT ...", {}, Exception("database or disk is full"))
    assert known_failure(sqlite_full)[1] == 1
    assert known_failure(KeyError("a bug")) is None  # not a known failure: the traceback is worth having


TARGET = "ztf:1095578115815010001"


def test_a_dead_letter_from_a_failed_write_is_resolved_when_a_rerun_stores_the_event(tmp_path, monkeypatch):
    real = EventQueries.add_events

    def failing_once(self, batch):
        batch = list(batch)
        if any(event.event_id == TARGET for event in batch):
            raise ValueError(f"simulated: the store refused {TARGET} this time")
        return real(self, batch)

    output = tmp_path / "out"
    monkeypatch.setattr(EventQueries, "add_events", failing_once)
    first = run([f"--input={DATA}/ztf/*", f"--output={output}"])
    assert first.dead_letters == {"sink:events": 1}
    store = HotStore(f"sqlite:///{output}/nightwatch.db")
    assert unresolved_write_failures(store) == 1
    letters_before = processing_metrics(store).detail

    monkeypatch.setattr(EventQueries, "add_events", real)
    second = run([f"--input={DATA}/ztf/*", f"--output={output}"])
    assert second.count("events.new") == 1  # the one the first run could not store
    with store.engine.connect() as conn:
        (letter,) = conn.execute(sa.select(dead_letters).where(dead_letters.c.event_id == TARGET)).all()
        assert conn.execute(sa.select(events.c.event_id).where(events.c.event_id == TARGET)).first() is not None
    assert letter.resolved_at is not None  # kept for the record, no longer counted
    assert unresolved_write_failures(store) == 0
    assert "1 dead letters" in letters_before and "0 dead letters" in processing_metrics(store).detail
    store.close()
