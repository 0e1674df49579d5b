"""Stop and resume intake (Data recovery steps 2 and 6) against the real Pub/Sub emulator: `nightwatch intake
pause` makes the running streaming job stop pulling (the subscription holds what is published meanwhile, the job
stores none of it, `health` and `workers` say so), `intake resume` picks up where it stopped, and every packet is
stored exactly once. The change is made by an Operator (an Observer is refused) and audited."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest

from access import accounts, audit
from cli.main import main
from core.event import utcnow
from devtools.pubsub import Emulator, OutgoingPacket, PacketPublisher, ensure_topics
from devtools.simulator import generate_packets
from ops import intake
from ops.health import evaluate
from ops.workers import workers
from pipeline.runners.local import restore_local_runner
from store.hot import HotStore
from store.layout import Outputs
from store.schema import dead_letters, events
from tests.test_streaming import PROJECT, RunningStream, streaming_config, wait_for

PASSWORD = "a long enough password"


@pytest.fixture(scope="module", autouse=True)
def stock_local_runner_afterwards():
    yield
    restore_local_runner()


@pytest.fixture(scope="module")
def emulator():
    with Emulator(PROJECT) as running:
        yield running


def held_on(subscriber, subscription: str) -> int:
    """How many messages wait on a subscription: pulled, counted, and handed straight back (ack deadline 0)."""
    held = 0
    for _ in range(5):
        response = subscriber.pull(subscription=subscription, max_messages=1000, timeout=5)
        received = response.received_messages
        if not received:
            break
        held += len(received)
        subscriber.modify_ack_deadline(
            subscription=subscription, ack_ids=[m.ack_id for m in received], ack_deadline_seconds=0
        )
        break
    return held


@pytest.mark.slow
def test_pause_holds_the_queue_and_resume_stores_every_packet_once(emulator, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", PASSWORD)  # --as olga: her password, as a script gives it
    config = streaming_config(tmp_path)
    spec = config.streaming.pubsub
    outputs = Outputs.under(str(tmp_path / "out"), None)
    ensure_topics(spec, PROJECT)
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    accounts.create_user_as_system(store, "test", "olga", "operator", PASSWORD)
    accounts.create_user_as_system(store, "test", "otto", "observer", PASSWORD)
    where = ["--db-url", outputs.db_url]
    publisher = PacketPublisher(spec, PROJECT, outputs.db_url)
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    mix = {"ztf": 0.5, "rubin": 0.4, "gcn": 0.1}

    def packets(count: int, seed: int) -> list[OutgoingPacket]:
        made = generate_packets(count, seed=seed, mix=mix, start=utcnow() - timedelta(seconds=2), span_s=2)
        return [OutgoingPacket(p.source, p.payload, p.event_time) for p in made]

    def stored() -> int:
        return store.count(events) + store.count(dead_letters)

    with RunningStream(config, outputs) as stream:
        before = packets(20, seed=21)
        publisher.publish(before)
        wait_for(lambda: stored() >= len(before), what="the first packets")

        assert main(["intake", "pause", "--as", "otto", *where]) == 2  # an Observer may not stop intake
        assert "needs the Operator role" in capsys.readouterr().err
        assert main(["intake", "pause", "--as", "olga", "--reason", "restore from backup", *where]) == 0
        assert "intake paused for every source by olga" in capsys.readouterr().out
        wait_for(
            lambda: any(w.state == "paused" for w in workers(store, kind="stream")), 30, "the job to see the pause"
        )
        held = packets(30, seed=22)
        publisher.publish(held)
        time.sleep(2 * intake.POLL_S + 2)
        assert stored() == len(before), "a paused job stored packets"
        queued = Counter()
        for source in spec.topics:
            queued[source] = held_on(subscriber, subscriber.subscription_path(PROJECT, spec.subscription(source)))
        assert sum(queued.values()) == len(held) and queued == Counter(p.source for p in held)
        # The status says so: health (not an outage: no SEV-1 for a paused intake), workers, intake status.
        report = evaluate(store, config, utcnow())
        assert report.intake_paused == ["gcn", "rubin", "ztf"] and "by olga" in report.intake_note
        assert report.severity != "SEV-1"
        assert main(["health", *where]) in (0, 2, 3, 4)
        assert "intake: intake paused: gcn, rubin, ztf (by olga" in capsys.readouterr().out
        main(["workers", *where])
        assert "intake paused: gcn, rubin, ztf" in capsys.readouterr().out

        assert main(["intake", "resume", "--as", "olga", *where]) == 0
        assert "intake resumed for every source by olga" in capsys.readouterr().out
        wait_for(lambda: stored() >= len(before) + len(held), what="the held packets after resume")
        time.sleep(3)
    counts, info = stream.result
    publisher.close()
    subscriber.close()
    assert info["drained"] is True
    assert counts["received"] == len(before) + len(held)
    assert stored() == len(before) + len(held)  # every packet once: none lost, none doubled
    assert counts.get("events.already_stored", 0) == 0
    assert intake.paused_sources(store) == set()
    actions = [(entry.actor, entry.action) for entry in audit.audit_entries(store) if entry.action.startswith("intake")]
    assert actions.count(("olga", "intake.pause")) == 1 and actions.count(("olga", "intake.resume")) == 1
    assert workers(store, kind="stream")[0].state == "stopped"
    store.close()


def test_a_single_source_can_be_paused_and_resumed(tmp_path):
    store = HotStore(f"sqlite:///{tmp_path}/nw.db")
    store.ensure_schema()
    accounts.create_user_as_system(store, "test", "olga", "operator", PASSWORD)
    intake.set_paused(store, "olga", True, "gcn")
    assert intake.paused_sources(store) == {"gcn"}
    intake.set_paused(store, "olga", True)
    assert intake.paused_sources(store) == {"gcn", "rubin", "ztf"}
    intake.set_paused(store, "olga", False)  # resume all: every source, its own pauses included
    assert intake.paused_sources(store) == set()
    with pytest.raises(intake.IntakeError):
        intake.set_paused(store, "olga", True, "weather")
    store.close()
