"""The simulator's designed classes are the classes the real pipeline gives its packets."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from devtools.simulator import generate_packets, write_packets
from pipeline.batch import run


@pytest.mark.parametrize("seed", [5, 17])
def test_every_packet_lands_in_its_designed_class(tmp_path, seed):
    packets = list(
        generate_packets(
            600,
            seed=seed,
            mix={"ztf": 0.4, "rubin": 0.3, "gcn": 0.3},
            rubin_wire="both",
            bad_fraction=0.03,
        )
    )
    write_packets(packets, tmp_path / "packets")
    out = tmp_path / "out"
    summary = run([f"--input={tmp_path / 'packets'}/*", f"--output={out}"])
    assert summary.accounted

    with sqlite3.connect(out / "nightwatch.db") as db:
        stored = {
            Path(json.loads(payload)["origin"]).name: cls
            for payload, cls in db.execute("select payload, event_class from events")
        }
        dead = {Path(origin).name for (origin,) in db.execute("select origin from dead_letters")}

    wrong = Counter()
    for p in packets:
        got = stored.get(p.name) or ("bad" if p.name in dead else "missing")
        if got != p.true_class:
            wrong[(p.source, p.true_class, got)] += 1
    assert not wrong, f"designed vs stored class (source, true, got): {dict(wrong)}"
    assert {p.true_class for p in packets} == {
        "critical",
        "significant",
        "interesting",
        "routine",
        "rejected",
        "bad",
    }
