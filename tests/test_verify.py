"""`nightwatch verify`: the tiers hold the same events, and a missing file or row is named."""

from __future__ import annotations

import json

import sqlalchemy as sa

from cli.main import main
from pipeline.batch import run
from store.hot import HotStore
from store.schema import events
from tests.conftest import DATA


def test_verify_passes_after_a_run_and_names_what_goes_missing(tmp_path, capsys):
    out = tmp_path / "out"
    summary = run([f"--input={DATA}/ztf/*.avro", f"--output={out}"])
    assert main(["verify", "--output", str(out)]) == 0
    assert "0 with a mismatch" in capsys.readouterr().out

    # A lost warm file and a lost hot-store row are both found and named.
    lost_file = sorted((out / "warm").rglob("*.parquet"))[0]
    lost_file.unlink()
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    with store.engine.begin() as conn:
        lost_row = conn.execute(sa.select(events.c.event_id).limit(1)).scalar_one()
        conn.execute(events.delete().where(events.c.event_id == lost_row))
    assert main(["verify", "--output", str(out), "--json"]) == 1
    checks = json.loads(capsys.readouterr().out)
    missing = {tier: ids for check in checks for tier, ids in check["missing"].items()}
    assert lost_row in missing["hot"]
    assert missing["warm"]
    # The archive holds every event but the rejected ones, which the retention table never archives.
    archived = sum(summary.by_class.values()) - summary.by_class["rejected"]
    assert sum(check["archive"] for check in checks) == archived
