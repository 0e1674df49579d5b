"""The batch and replay graph on a real dask.distributed cluster (scheduler and worker processes): the same stored
events, classes, alerts, links, dead letters and tier contents as the FnApiRunner on the same packets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from devtools.bench import write_packets
from pipeline.batch import run
from store.hot import HotStore
from store.schema import alerts, associations, dead_letters, events, review_queue
from store.tiers import read_archive, read_warm

pytestmark = pytest.mark.slow  # a cluster's start and two runs: about a minute here

distributed = pytest.importorskip("dask.distributed")


def _contents(out) -> dict:
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    with store.engine.connect() as conn:
        found = {
            "events": set(
                conn.execute(sa.select(events.c.event_id, events.c.event_class, events.c.alert_level, events.c.night))
            ),
            "alerts": set(conn.execute(sa.select(alerts.c.alert_id, alerts.c.level))),
            "review": set(conn.execute(sa.select(review_queue.c.event_id))),
            "dead_letters": set(conn.execute(sa.select(dead_letters.c.dead_letter_id, dead_letters.c.stage))),
            "links": set(conn.execute(sa.select(associations.c.trigger_id, associations.c.counterpart_id))),
        }
    store.close()
    warm = read_warm(f"{out}/warm")
    found["warm"] = set(zip(warm.column("event_id").to_pylist(), warm.column("event_class").to_pylist(), strict=True))
    found["archive"] = {(record["event_id"], record["raw"]) for record in read_archive(f"{out}/archive")}
    return found


def test_dask_cluster_stores_what_the_fnapi_runner_stores(tmp_path):
    packets = tmp_path / "packets"
    write_packets(packets, 120, seed=21)
    local = run([f"--input={packets}/*", f"--output={tmp_path / 'fnapi'}", "--run_id=fnapi"])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        dask = run(
            [
                f"--input={packets}/*",
                f"--output={tmp_path / 'dask'}",
                "--run_id=dask",
                "--runner=pipeline.runners.dask.runner.NightwatchDaskRunner",
                f"--dask_client_address={cluster.scheduler_address}",
                "--dask_npartitions=4",
            ]
        )
        workers = len(cluster.scheduler_info["workers"])
    finally:
        cluster.close()
    assert workers == 2
    assert dask.accounted and local.accounted and dask.received == local.received == 120
    assert dask.by_class == local.by_class and dask.dead_letters == local.dead_letters
    expected, found = _contents(tmp_path / "fnapi"), _contents(tmp_path / "dask")
    for table in expected:
        assert found[table] == expected[table], table
    assert len(expected["events"]) > 100 and expected["alerts"] and expected["archive"]

    # Replay: the archive written on the cluster, read back on the cluster, stores nothing twice.
    replayed = run(
        [
            f"--output={tmp_path / 'dask'}",
            "--run_id=replay",
            f"--replay_archive={tmp_path / 'dask' / 'archive'}",
            "--replay_start=2000-01-01T00:00:00Z",
            "--replay_end=2100-01-01T00:00:00Z",
            "--runner=pipeline.runners.dask.runner.NightwatchDaskRunner",
            "--direct_num_workers=2",
        ]
    )
    assert replayed.accounted and replayed.received == len(expected["archive"])
    assert replayed.count("events.already_stored") == len(expected["archive"])
    assert _contents(tmp_path / "dask") == found
