"""`nightwatch replay`: lost events come back from the archive or from files, once, with no duplicate alerts."""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.cli import main
from pipeline.run import run
from pipeline.store import HotStore, alerts, events
from tests.conftest import DATA

RANGE = ["--start", "2015-01-01", "--end", "2030-01-01"]


def test_replay_from_the_archive_recovers_lost_events_once(tmp_path, capsys):
    out = tmp_path / "out"
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


def test_replay_from_files_and_by_source(tmp_path, capsys):
    out = tmp_path / "out"
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
