"""The notification outbox under kill -9: a real `nightwatch run` over the sample packets, its HIGH and CRITICAL
alerts going to a local webhook, killed (SIGKILL) at a random moment during store and notify, then run again,
then `nightwatch notify run --once`: no event twice, none lost, every alert delivered, once per dedup key.

An alert stored is an alert queued (`notify_outbox`, in the alert's own transaction), so the crash can fall
between storing and notifying without losing it; the `deliveries` claim keeps a redelivered alert from going
twice. A send cut off by the kill leaves a `retrying` row whose lease (timeout + 60 s) keeps other workers off
it: the test lets that time pass by moving the lease back, as waiting would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from core.event import utcnow
from ops.notify.outbox import pending_alerts
from store.hot import HotStore
from store.schema import alerts, deliveries, events, notify_outbox
from tests.conftest import DATA, REPO
from tests.test_notify import add_alert, notifier_for, receivers_fixture, setup_fixture, smtp_fixture  # noqa: F401

SAMPLE_EVENTS, SAMPLE_ALERTS = 214, 44  # what the real samples store (tests/test_isolation.py's baseline)


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        time.sleep(self.server.delay_s)  # a receiver that takes its time: the notify step lasts long enough to cut
        with self.server.lock:
            self.server.received.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = True
    server.lock, server.received, server.delay_s = threading.Lock(), [], 0.1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def config_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    notifications = {
        "version": "crash-test",
        "channels": {"webhook": {"kind": "webhook", "url_env": "NW_CRASH_HOOK_URL"}},
        "levels": {
            "CRITICAL": {"channels": ["webhook"], "throttle": False},
            "HIGH": {"channels": ["webhook"]},
            "MEDIUM": {"channels": []},
            "LOW": {"channels": []},
        },
        "budget_per_night": 10000,  # no HIGH held for a digest: each goes out on its own
        "retry": {"max_attempts": 5, "backoff_s": 1, "max_backoff_s": 5},
        "pipeline_timeout_s": 3,
        "timeout_s": 3,
        "poll_s": 1,
    }
    (folder / "notifications.yaml").write_text(yaml.safe_dump(notifications))
    return folder


def nightwatch(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-3000:]
    return out


def counts(store: HotStore) -> tuple[int, int, int, int]:
    with store.engine.connect() as conn:

        def count(table, *where):
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()

        return (
            count(events),
            count(alerts),
            count(notify_outbox, notify_outbox.c.done_at.is_(None)),
            count(deliveries, deliveries.c.status == "retrying"),
        )


def wait_for_alerts(url: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    """Until the run has stored its first alert (store and notify are under way), or has ended."""
    engine = sa.create_engine(f"sqlite:///{url}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with engine.connect() as conn:
                    if conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar():
                        return
            except sa.exc.OperationalError:  # no store or no tables yet
                pass
            time.sleep(0.05)
    finally:
        engine.dispose()


def one_trial(tmp_path: Path, webhook, delay_s: float) -> dict:
    output, config = tmp_path / "out", config_folder(tmp_path / "config")
    env = {**os.environ, "NW_CRASH_HOOK_URL": f"http://127.0.0.1:{webhook.server_address[1]}/hook"}
    run_args = ("run", f"--input={DATA}/**/*", f"--output={output}", f"--config={config}")
    first = nightwatch(*run_args, env=env)
    wait_for_alerts(output / "nightwatch.db", first)
    time.sleep(delay_s)  # a random moment after the first alert is stored
    first.kill()  # SIGKILL: no cleanup, no flush
    first.wait()
    store = HotStore(f"sqlite:///{output}/nightwatch.db")
    try:
        at_kill = counts(store)
    except sa.exc.OperationalError:  # killed before the store had its tables
        at_kill = (0, 0, 0, 0)
    sent_before_rerun = len(webhook.received)
    finish(nightwatch(*run_args, env=env))
    # The lease of a send the kill cut off runs out (timeout + 60 s): let that time pass.
    with store.engine.begin() as conn:
        conn.execute(deliveries.update().where(deliveries.c.status == "retrying").values(next_attempt_at=utcnow()))
    finish(nightwatch("notify", "run", "--once", f"--output={output}", f"--config={config}", env=env))
    stored_events, stored_alerts, pending, retrying = counts(store)
    with store.engine.connect() as conn:
        levels = dict(conn.execute(sa.select(alerts.c.alert_id, alerts.c.level)).all())
    store.close()
    received = Counter(body["dedup_key"] for body in webhook.received)
    return {
        "delay_s": delay_s,
        "killed_with": first.returncode,
        "at_kill": at_kill,
        "sent_before_rerun": sent_before_rerun,
        "events": stored_events,
        "alerts": stored_alerts,
        "levels": levels,
        "pending": pending,
        "retrying": retrying,
        "received": received,
    }


def check(trial: dict) -> None:
    assert trial["killed_with"] == -signal.SIGKILL
    assert trial["events"] == SAMPLE_EVENTS  # nothing lost; the primary key makes a duplicate impossible
    assert trial["alerts"] == SAMPLE_ALERTS
    assert set(trial["levels"].values()) <= {"CRITICAL", "HIGH"}
    assert trial["pending"] == 0 and trial["retrying"] == 0
    # Every alert reached the receiver under its dedup key; a second copy only of a send the kill cut off (the
    # receiver had it, the row did not say so yet): at most one, which its dedup key lets the receiver drop.
    assert set(trial["received"]) == set(trial["levels"])
    assert sum(trial["received"].values()) - len(trial["received"]) <= 1, trial["received"].most_common(3)


def test_an_alert_stored_is_queued_and_the_worker_sends_it_once(setup):
    """In process: alerts stored with no notify step after them (the crash) are pending; `notify_pending`
    (the pipeline's start, `notify run`) sends each once, and a second pass sends nothing."""
    config, store, receivers, _smtp, clock = setup
    ids = [add_alert(store, n, level) for n, level in enumerate(["CRITICAL", "HIGH", "HIGH"])]
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.select(notify_outbox.c.alert_id).where(notify_outbox.c.done_at.is_(None))).scalars().all()
        )
    notifier = notifier_for(config, store, clock)
    try:
        first = notifier.notify_pending()
        again = notifier.notify_pending()
    finally:
        notifier.close()
    assert {row["alert_id"] for row in first} == set(ids) and again == []
    hooked = Counter(request["body"]["alert_id"] for request in receivers["webhook"].received)
    assert hooked == Counter(ids)  # once each, HIGH included
    assert pending_alerts(store) == []


def test_the_alert_and_its_outbox_row_commit_together(store, monkeypatch):
    """If the outbox row cannot be written, the alert is not stored either (the batch fails, whole)."""
    from store import events as store_events

    real = store_events.insert_ignoring_conflicts

    def broken(conn, table, keys):
        if table is notify_outbox:
            raise RuntimeError("the disk went away between the two inserts")
        return real(conn, table, keys)

    monkeypatch.setattr(store_events, "insert_ignoring_conflicts", broken)
    with pytest.raises(RuntimeError):
        add_alert(store, 1, "HIGH")
    assert store.count(alerts) == 0


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(5))
def test_kills_at_random_points_lose_no_alert(tmp_path, webhook, trial):
    delay = random.Random(trial).uniform(0.0, 5.0)
    result = one_trial(tmp_path, webhook, delay_s=delay)
    print({key: value for key, value in result.items() if key not in ("levels", "received")})
    check(result)
