"""`nightwatch replay`: lost events come back from the archive or from files, once, with no duplicate alerts."""

from __future__ import annotations

import sqlalchemy as sa

from cli.main import main
from pipeline.batch import run
from store.hot import HotStore
from store.schema import alerts, events
from tests.conftest import DATA, act_as_service

RANGE = ["--start", "2015-01-01", "--end", "2030-01-01"]


def test_replay_from_the_archive_recovers_lost_events_once(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    act_as_service(monkeypatch, f"sqlite:///{out}/nightwatch.db")  # replaying acts as an Operator
    run([f"--input={DATA}/gcn/voevent/*.xml", f"--output={out}"])
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    events_before, alerts_before = store.count(events), store.count(alerts)
    with store.engine.begin() as conn:  # an outage: events and their alerts lost from the hot store
        lost = conn.execute(sa.select(alerts.c.event_id).limit(3)).scalars().all()
        conn.execute(events.delete().where(events.c.event_id.in_(lost)))
        conn.execute(alerts.delete().where(alerts.c.event_id.in_(lost)))

    assert main(["replay", "--from", "archive", *RANGE, "--output", str(out), "--dry-run"]) == 0
    assert "3 missing" in capsys.readouterr().out
    assert store.count(events) == events_before - 3  # a dry run replays nothing

    assert main(["replay", "--from", "archive", *RANGE, "--output", str(out)]) == 0
    said = capsys.readouterr().out
    assert "recovered 3" in said
    assert (store.count(events), store.count(alerts)) == (events_before, alerts_before)

    # Again: nothing to recover, nothing duplicated.
    assert main(["replay", "--from", "archive", *RANGE, "--output", str(out)]) == 0
    assert "recovered 0" in capsys.readouterr().out
    assert (store.count(events), store.count(alerts)) == (events_before, alerts_before)
    assert main(["verify", "--output", str(out)]) == 0


def test_an_outage_of_a_night_in_hot_and_warm_is_restored_exactly_from_the_archive(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    act_as_service(monkeypatch, f"sqlite:///{out}/nightwatch.db")  # replaying acts as an Operator
    run(["--simulate=300", "--seed=5", f"--output={out}"])
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    tables = {table.name: store.count(table) for table in (events, alerts)}
    with store.engine.connect() as conn:
        night = conn.execute(sa.select(events.c.night).limit(1)).scalar_one()
    with store.engine.begin() as conn:  # the whole night gone from the hot store...
        lost_alerts = (
            conn.execute(
                sa.select(alerts.c.event_id)
                .join(events, events.c.event_id == alerts.c.event_id)
                .where(events.c.night == night)
            )
            .scalars()
            .all()
        )
        lost_rejected = set(
            conn.execute(
                sa.select(events.c.event_id).where((events.c.night == night) & (events.c.event_class == "rejected"))
            ).scalars()
        )
        conn.execute(alerts.delete().where(alerts.c.event_id.in_(lost_alerts)))
        conn.execute(events.delete().where(events.c.night == night))
    for path in (out / "warm" / f"night={night}").rglob("*.parquet"):  # ...and from the warm tier
        path.unlink()
    assert main(["verify", "--output", str(out)]) == 1
    capsys.readouterr()

    assert main(["replay", "--from", "archive", *RANGE, "--output", str(out)]) == 0
    # Exactly, no duplicates: every event the archive keeps. Rejected events are not archived (the guide's
    # retention table), so with the hot store and the warm tier both lost they come back only from the sources'
    # packet files (`replay --from files`) or a backup; no tier holds them, so verify has nothing to compare.
    assert lost_rejected
    assert {table.name: store.count(table) for table in (events, alerts)} == {
        "events": tables["events"] - len(lost_rejected),
        "alerts": tables["alerts"],
    }
    assert main(["verify", "--output", str(out)]) == 0


def test_replay_from_files_and_by_source(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    act_as_service(monkeypatch, f"sqlite:///{out}/nightwatch.db")  # replaying acts as an Operator
    run([f"--input={DATA}/ztf/*.avro", f"--output={out}"])
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    with store.engine.begin() as conn:
        conn.execute(events.delete())
    assert main(["replay", "--from", "archive", *RANGE, "--source", "gcn", "--output", str(out)]) == 0
    assert "recovered 0" in capsys.readouterr().out  # nothing of that source was archived
    assert main(["replay", "--from", "files", "--input", f"{DATA}/ztf/*.avro", *RANGE, "--output", str(out)]) == 0
    assert "recovered 54" in capsys.readouterr().out
    assert main(["replay", "--from", "files", *RANGE, "--output", str(out)]) == 2
    assert "--from files needs --input" in capsys.readouterr().err
