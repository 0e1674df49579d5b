"""The streaming job end to end against the real Pub/Sub emulator."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa
import yaml

from config.settings import CONFIG_DIR, load_config
from core.event import utcnow
from core.names import ATTR_DEDUP_KEY
from devtools.pubsub import Emulator, OutgoingPacket, PacketPublisher, ensure_topics
from devtools.simulator import generate_packets
from pipeline.runners.local import restore_local_runner
from pipeline.streaming import IdleClock, run_stream
from store.hot import HotStore
from store.layout import Outputs
from store.schema import alerts, associations, dead_letters, events, metrics
from store.thresholds import ThresholdStore, with_cut_value
from tests.conftest import DATA

PROJECT = "nightwatch-tests"


@pytest.fixture(scope="module", autouse=True)
def stock_local_runner_afterwards():
    """The streaming jobs here patch the local runner (pipeline/runners/local); the other modules get Beam's."""
    yield
    restore_local_runner()


@pytest.fixture(scope="module")
def emulator():
    with Emulator(PROJECT) as running:
        yield running


def streaming_config(tmp_path: Path):
    """Small windows so a test sees them close; topics of its own so tests do not share messages."""
    settings = yaml.safe_load((CONFIG_DIR / "streaming.yaml").read_text())
    tag = uuid.uuid4().hex[:8]
    settings["pubsub"]["project"] = PROJECT
    settings["pubsub"]["topics"] = {source: f"nw-{tag}-{source}" for source in ("ztf", "rubin", "gcn")}
    settings["pubsub"]["alerts_topic"] = f"nw-{tag}-alerts"
    settings["windows"] = {"metrics_s": 5, "allowed_lateness_s": 30, "tier_batch_s": 2}
    settings["association"] = {"window_s": 600, "max_separation_deg": 15.0, "error_scale": 1.0}
    settings["thresholds"] = {"refresh_s": 0.5}
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "streaming.yaml").write_text(yaml.safe_dump(settings))
    return load_config(folder)


class RunningStream:
    """The streaming job in a background thread, stopped (and drained) on exit."""

    def __init__(self, config, outputs):
        self._stop, self._started = threading.Event(), threading.Event()
        self.result: tuple | None = None
        self._thread = threading.Thread(
            target=lambda: setattr(
                self,
                "result",
                run_stream([], config, outputs, PROJECT, None, started=self._started, stop=self._stop),
            ),
            daemon=True,
        )

    def __enter__(self):
        self._thread.start()
        assert self._started.wait(60), "the streaming job did not start"
        return self

    def stop(self) -> tuple:
        self._stop.set()
        self._thread.join(timeout=240)
        assert self.result is not None, "the streaming job did not stop"
        return self.result

    def __exit__(self, *_exc):
        if self.result is None:
            self.stop()


def wait_for(condition, timeout_s: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def pull_all(subscriber, subscription: str) -> list:
    """Every message waiting on a subscription, acknowledged."""
    messages = []
    while response := subscriber.pull(subscription=subscription, max_messages=100, timeout=5).received_messages:
        messages += response
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response])
    return messages


def jd(moment: datetime) -> float:
    return moment.timestamp() / 86400.0 + 2440587.5


def optical_counterpart(ra: float, dec: float, when: datetime) -> bytes:
    """A simulated ZTF 'interesting' transient moved to (ra, dec) at `when`."""
    packet = next(p for p in generate_packets(200, seed=42, mix={"ztf": 1.0}) if p.true_class == "interesting")
    reader = fastavro.reader(io.BytesIO(packet.payload))
    schema, record = reader.writer_schema, next(reader)
    shift = jd(when) - record["candidate"]["jd"]
    record["candidate"].update(ra=ra, dec=dec, jd=record["candidate"]["jd"] + shift)
    record["candidate"]["jdstarthist"] += shift
    record["candidate"]["jdendhist"] = (record["candidate"].get("jdendhist") or 0) + shift
    for previous in record.get("prv_candidates") or []:
        previous["jd"] += shift
    record["candid"] += 7
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [record])
    return buffer.getvalue()


def grb_trigger(ra: float, dec: float, error: float, when: datetime) -> bytes:
    notice = json.loads((DATA / "gcn/json/fermi.gbm.trigger.final.example.json").read_text())
    notice.update(trigger_time=when.isoformat().replace("+00:00", "Z"), ra=ra, dec=dec, ra_dec_error=error)
    notice["id"] = [str(uuid.uuid4().int % 10**9)]
    return json.dumps(notice).encode()


def test_stream_end_to_end(emulator, tmp_path):
    config = streaming_config(tmp_path)
    spec = config.streaming.pubsub
    outputs = Outputs.under(str(tmp_path / "out"), None)
    ensure_topics(spec, PROJECT)
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    alerts_subscription = subscriber.subscription_path(PROJECT, f"{spec.alerts_topic}-test")
    subscriber.create_subscription(name=alerts_subscription, topic=subscriber.topic_path(PROJECT, spec.alerts_topic))
    publisher = PacketPublisher(spec, PROJECT, outputs.db_url)
    mix = {"ztf": 0.45, "rubin": 0.45, "gcn": 0.1}

    stream = RunningStream(config, outputs)
    with stream:
        now = utcnow()
        valid = list(generate_packets(80, seed=7, mix=mix, start=now - timedelta(seconds=2), span_s=2))
        bad = list(generate_packets(5, seed=8, mix=mix, start=now, span_s=1, bad_fraction=1.0))
        late = list(generate_packets(3, seed=9, mix=mix, start=now - timedelta(seconds=20), span_s=1))
        too_late = list(generate_packets(2, seed=10, mix=mix, start=now - timedelta(seconds=300), span_s=1))
        first = valid + bad + late + too_late
        pair = [
            OutgoingPacket("gcn", grb_trigger(150.0, 20.0, 2.0, now), now),
            # The counterpart happened 25 s ago: it arrives after its window closed, and is still linked.
            OutgoingPacket(
                "ztf", optical_counterpart(150.6, 20.4, now - timedelta(seconds=25)), now - timedelta(seconds=25)
            ),
        ]
        outgoing = [OutgoingPacket(p.source, p.payload, p.event_time) for p in first] + pair
        duplicates = [OutgoingPacket(p.source, p.payload, p.event_time) for p in valid[:6]]
        publisher.publish(outgoing + duplicates)
        store = HotStore(outputs.db_url)
        wait_for(lambda: store.count(events) + store.count(dead_letters) >= len(outgoing), what="first packets")

        # A live threshold change while the job runs: ZTF packets published after it are cut by it.
        ThresholdStore(store).publish(with_cut_value(config.filters, "ztf", "real_bogus", 0.999), author="test")
        time.sleep(1.5)
        later = [p for p in generate_packets(40, seed=11, mix={"ztf": 1.0}, start=utcnow(), span_s=1)]
        later = [p for p in later if p.true_class not in ("rejected", "bad")]
        publisher.publish(OutgoingPacket(p.source, p.payload, p.event_time) for p in later)
        expected_rows = len(outgoing) + len(later)
        wait_for(lambda: store.count(events) + store.count(dead_letters) >= expected_rows, what="every packet")
    publisher.close()
    counts, info = stream.result
    sent = len(outgoing) + len(duplicates) + len(later)

    # Every packet accounted for exactly once.
    assert info["drained"] is True
    assert counts["received"] == sent
    stored_new = counts["events.new"]
    assert store.count(events) == stored_new == len(valid) + len(late) + len(too_late) + len(pair) + len(later)
    assert counts["events.already_stored"] == len(duplicates)
    assert store.count(dead_letters) == counts["dead_letters.decode"] == len(bad)
    assert counts["received"] == sum(v for k, v in counts.items() if k.startswith("stored.")) + len(bad)

    with store.engine.connect() as conn:
        decided = {
            row.event_id: (row.event_class, json.loads(row.payload)["lineage"])
            for row in conn.execute(sa.select(events.c.event_id, events.c.event_class, events.c.payload))
        }
        window_rows = conn.execute(sa.select(metrics)).all()
        links = conn.execute(sa.select(associations)).all()
        alert_ids = set(conn.execute(sa.select(alerts.c.alert_id)).scalars())
    # Each simulated packet landed in its designed class (before the live change).
    by_origin_class = Counter(cls for cls, _ in decided.values())
    assert by_origin_class["rejected"] >= len(later)
    # Events after the live change were decided with it.
    live_versions = {lineage["filter_version"] for _, lineage in decided.values()}
    assert f"{config.filters.version}+live.1" in live_versions and config.filters.version in live_versions

    # Windows: every received packet is counted in exactly one window of its source; late ones are flagged.
    received_by_source = Counter()
    for row in window_rows:
        received_by_source[row.source] += row.received
    published = Counter(p.source for p in [*outgoing, *duplicates]) + Counter(p.source for p in later)
    assert received_by_source == published
    assert sum(row.late for row in window_rows) >= len(late) + len(too_late)
    assert all(
        row.latency_p50_s is not None and row.latency_p99_s >= row.latency_p50_s for row in window_rows if row.stored
    )
    assert any(row.queue_depth is not None for row in window_rows)

    # The multi-messenger pair is linked, and the optical counterpart raised from interesting to significant.
    from core.decoders import PacketDecoder
    from core.event import Packet

    decoder = PacketDecoder(config.sources)
    trigger_id, counterpart_id = (decoder.decode(Packet(payload=p.payload, origin="t"))[0].event_id for p in pair)
    link = next(link for link in links if (link.trigger_id, link.counterpart_id) == (trigger_id, counterpart_id))
    assert link.separation_deg < 1.0 and link.time_offset_s == pytest.approx(-25, abs=1)
    assert all(link.separation_deg <= 15.0 for link in links)
    counterpart_class, counterpart_lineage = decided[counterpart_id]
    assert counterpart_class == "significant" and counterpart_lineage["raised_from"] == "interesting"
    assert trigger_id in counterpart_lineage["associated_with"]

    # One count of each level: the summary's alert counts are the stored alerts, association raises included
    # (a redelivered alerting packet is counted again by the sink, as events are).
    with store.engine.connect() as conn:
        stored_levels = dict(conn.execute(sa.select(alerts.c.event_id, alerts.c.level)).all())
    redelivered = Counter(
        stored_levels[event_id]
        for event_id in (decoder.decode(Packet(payload=p.payload, origin="t"))[0].event_id for p in duplicates)
        if event_id in stored_levels
    )
    for level in ("CRITICAL", "HIGH"):
        stored = sum(value == level for value in stored_levels.values())
        assert counts.get(f"alerts.{level}", 0) == stored + redelivered[level], level

    # Alerts went out on the alerts topic too, each once, keyed by its dedup key.
    keys = [m.message.attributes[ATTR_DEDUP_KEY] for m in pull_all(subscriber, alerts_subscription)]
    assert set(keys) == alert_ids
    # The raised counterpart's alert was published when it was raised.
    assert f"alert:{counterpart_id}" in keys


@pytest.mark.slow
def test_sigint_drains_and_a_restart_loses_and_duplicates_nothing(emulator, tmp_path):
    """`nightwatch stream` stopped by Ctrl-C mid-feed, then started again: every packet stored once."""
    import os
    import signal
    import subprocess
    import sys

    streaming_config(tmp_path)  # writes tmp_path/config
    out = tmp_path / "out"
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": emulator.host}
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "stream",
        "--emulator",
        "no",
        "--project",
        PROJECT,
        "--config",
        str(tmp_path / "config"),
        "--output",
        str(out),
    ]
    first = subprocess.Popen(
        [
            *command,
            "--duration",
            "0",
            "--rate",
            "60",
            "--feed-duration",
            "600",
            "--bad-fraction",
            "0.05",
            "--duplicate-fraction",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    store = HotStore(f"sqlite:///{out}/nightwatch.db")

    def flowing() -> bool:
        try:  # the job creates the store (file first, then its tables through the migrations)
            return store.count(events) > 150
        except sa.exc.OperationalError:
            return False

    wait_for(flowing, 120, "packets flowing")
    first.send_signal(signal.SIGINT)
    output, _ = first.communicate(timeout=240)
    assert first.returncode == 0, output
    assert "draining (SIGINT)" in output and "accounting                           OK" in output
    published = int(output.split("feed: published ")[1].split(" ")[0])

    second = subprocess.run(
        [*command, "--duration", "0", "--until-idle", "8"], capture_output=True, text=True, env=env, timeout=400
    )
    assert second.returncode == 0, second.stdout + second.stderr
    with store.engine.connect() as conn:
        received = conn.execute(sa.select(sa.func.sum(metrics.c.received))).scalar_one()
        stored_ids = conn.execute(sa.select(events.c.event_id)).scalars().all()
    # Every published message was received by one of the two runs (none lost while draining)...
    assert received == published, output + "\n=====\n" + second.stdout + second.stderr[-3000:]
    assert store.queue_depth("ztf") == store.queue_depth("rubin") == store.queue_depth("gcn") == 0
    # ...and the re-published and duplicated ones were stored once.
    assert len(stored_ids) == len(set(stored_ids))


def test_every_real_sample_packet_streams_through(emulator, tmp_path):
    """The real packets (Rubin alerts of 130-230 kB among them) over Pub/Sub: all read, all accounted for."""
    from tests.conftest import sample_files

    config = streaming_config(tmp_path)
    outputs = Outputs.under(str(tmp_path / "out"), None)
    ensure_topics(config.streaming.pubsub, PROJECT)
    files = sample_files()
    publisher = PacketPublisher(config.streaming.pubsub, PROJECT, outputs.db_url)
    source_of = {"ztf": "ztf", "rubin": "rubin", "gcn": "gcn"}
    publisher.publish(
        OutgoingPacket(source_of[path.relative_to(DATA).parts[0]], path.read_bytes(), utcnow()) for path in files
    )
    publisher.close()
    counts, info = run_stream([], config, outputs, PROJECT, None, idle_s=12, drain_windows=False)
    store = HotStore(outputs.db_url)
    assert info["drained"] and counts["received"] == len(files)
    assert store.count(events) + store.count(dead_letters) == len(files)
    assert store.count(dead_letters) == 5  # the GCN schema's core fragments


def test_simulate_publishes_a_live_feed_and_counts_it(emulator, tmp_path, capsys):
    from cli.main import main
    from store.schema import published

    config = streaming_config(tmp_path)
    argv = [
        "simulate",
        "--rate",
        "40",
        "--duration",
        "2",
        "--burst",
        "30",
        "--burst-at",
        "0.5",
        "--bad-fraction",
        "0.1",
        "--emulator",
        "no",
        "--project",
        PROJECT,
        "--config",
        str(tmp_path / "config"),
        "--output",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    said = capsys.readouterr().out
    total = int(said.split("published ")[1].split(" ")[0])
    assert total >= 30 + 40  # the burst and about two seconds at 40 a second
    store = HotStore(f"sqlite:///{tmp_path / 'out'}/nightwatch.db")
    with store.engine.connect() as conn:
        counted = conn.execute(sa.select(sa.func.sum(published.c.count))).scalar_one()
    assert counted == total
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    waiting = sum(
        len(pull_all(subscriber, subscriber.subscription_path(PROJECT, config.streaming.pubsub.subscription(source))))
        for source in ("ztf", "rubin", "gcn")
    )
    assert waiting == total


@pytest.mark.slow
def test_injection_test_through_pubsub_on_the_running_stream(emulator, tmp_path, capsys):
    """The post-deployment injection test against a running streaming job: recall measured end to end."""
    from cli.main import main

    config = streaming_config(tmp_path)
    outputs = Outputs.under(str(tmp_path / "out"), None)
    ensure_topics(config.streaming.pubsub, PROJECT)
    argv = ["inject", "--through", "pubsub", "--count", "30", "--seed", "21", "--timeout", "120", "--json"]
    argv += ["--project", PROJECT, "--config", str(tmp_path / "config"), "--output", str(tmp_path / "out")]
    with RunningStream(config, outputs):
        code = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["through"] == "pubsub"
    assert (
        report["missing"] == [] and report["critical_recall"] == 1.0 and report["classes"]["critical"]["designed"] == 3
    )
    assert 0 < report["latency_s"]["p50"] < 60  # publish to store, through the running job
    store = HotStore(outputs.db_url)
    assert store.count(events, injected=True) == 30
    store.close()


def test_a_busy_job_is_not_idle_only_a_job_with_nothing_to_do():
    """Seen by hand: a job slowed by load pulled nothing for 15 s while it finished a big pull, and `--until-idle`
    drained it with 1,225 packets still queued. Progress on any counter keeps the job running."""
    clock = IdleClock(idle_s=15, now=0.0)
    assert not clock.idle({"ingested": 207}, paused=False, now=0.0)
    # Nothing new pulled, but what was pulled is being stored: busy, not idle.
    for second, stored in ((5, 50), (10, 120), (20, 204)):
        assert not clock.idle({"ingested": 207, "stored": stored}, paused=False, now=float(second))
    assert not clock.idle({"ingested": 207, "stored": 204}, paused=False, now=34.0)
    assert clock.idle({"ingested": 207, "stored": 204}, paused=False, now=35.0)  # 15 s with nothing moving


def test_a_paused_intake_is_not_idleness():
    clock = IdleClock(idle_s=5, now=0.0)
    for second in range(0, 60, 5):
        assert not clock.idle({"ingested": 10}, paused=True, now=float(second))
    # The idle clock counts from the last moment the intake was paused (55 s), not from the last packet.
    assert not clock.idle({"ingested": 10}, paused=False, now=56.0)
    assert clock.idle({"ingested": 10}, paused=False, now=60.0)
    assert not IdleClock(idle_s=None, now=0.0).idle({}, paused=False, now=1e6)  # no --until-idle: never idle
