"""A release followed live by a running streaming job (Pub/Sub emulator, BundleBasedDirectRunner): shadow
decisions recorded beside, promotion and rollback picked up without a restart, each event naming its version."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from access import accounts
from cli.main import main
from config.settings import load_config
from devtools.pubsub import Emulator, ensure_topics
from ops import inject
from pipeline.runners.local import restore_local_runner
from store.hot import HotStore
from store.layout import Outputs
from store.schema import events
from tests.test_streaming import PROJECT, RunningStream, streaming_config

PASSWORD = "a-long-test-password"
PORT = 19711  # this suite's own emulator port


@pytest.fixture(scope="module", autouse=True)
def stock_local_runner_afterwards():
    yield
    restore_local_runner()


def publish_and_wait(config, store, seed: int) -> dict[str, str]:
    """Designed packets through the running job; event id -> the rules version that decided it."""
    packets = inject.make_packets(12, inject.DEFAULT_CLASS_MIX, seed)
    expected = inject.expected_classes(packets, config)
    inject.through_pubsub(packets, expected, config, PROJECT, store, timeout_s=120)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.event_id, events.c.payload).where(events.c.event_id.in_(expected)))
        lineage = {row.event_id: json.loads(row.payload)["lineage"] for row in rows}
    assert set(lineage) == set(expected), "every packet stored"
    return lineage


@pytest.mark.slow
def test_a_running_job_follows_shadow_promotion_and_rollback_without_restart(tmp_path, capsys):
    config = streaming_config(tmp_path)
    folder = tmp_path / "out"
    outputs = Outputs.under(str(folder), None)
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    accounts.bootstrap(store, "root", PASSWORD)
    accounts.create_user(store, "root", "adm", "admin", PASSWORD)
    where = ["--output", str(folder), "--config", str(tmp_path / "config")]
    shipped = load_config().classification.version

    def release(*argv: str) -> int:
        return main(["release", *argv, *where])

    with Emulator(PROJECT, port=PORT):  # sets PUBSUB_EMULATOR_HOST while it runs
        ensure_topics(config.streaming.pubsub, PROJECT)
        with RunningStream(config, outputs):
            before = publish_and_wait(config, store, seed=1)
            assert {lineage["rules_version"] for lineage in before.values()} == {shipped}

            # A stricter rule: optical transients must be brighter to be worth a look.
            rule = ["new_optical_transient", "mag", "<=", "19.0"]
            assert release("register", "classification", "--set-rule", *rule, "--notes", "stricter", "--as", "adm") == 0
            assert release("shadow", "1", "--from", "hot", "--as", "adm") == 0
            label = f"{shipped}+release.1"
            time.sleep(1.5)  # the job re-reads the releases every 0.5 s here
            shadowed = publish_and_wait(config, store, seed=2)
            assert {lineage["rules_version"] for lineage in shadowed.values()} == {shipped}  # still deciding
            assert {lineage.get("shadow_version") for lineage in shadowed.values()} == {label}
            capsys.readouterr()
            assert release("diff", "1", "--json") == 0
            live = json.loads(capsys.readouterr().out)["live"]
            assert live["considered"] >= len(shadowed)

            # Promoted: the same job, not restarted, now decides with the release.
            assert release("promote", "1", "--as", "adm", "--note", "monthly update") == 0
            time.sleep(1.5)
            after = publish_and_wait(config, store, seed=3)
            assert {lineage["rules_version"] for lineage in after.values()} == {label}
            assert all("shadow_version" not in lineage for lineage in after.values())

            # Rolled back: the shipped rules again, still the same job.
            assert release("rollback", "1", "--as", "adm", "--note", "back") == 0
            time.sleep(1.5)
            back = publish_and_wait(config, store, seed=4)
            assert {lineage["rules_version"] for lineage in back.values()} == {shipped}
    store.close()
