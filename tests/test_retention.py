"""`nightwatch retention`: the guide's table, tier by tier, never the last copy, idempotent."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from cli.main import main
from pipeline.batch import run
from store.hot import HotStore
from store.schema import events
from store.tiers import read_archive, read_warm
from tests.conftest import act_as_service


@pytest.fixture
def night(tmp_path, monkeypatch):
    """A simulated night, received now; returns the output folder and the classes stored. Retention is applied
    by an Operator (a service account)."""
    out = tmp_path / "out"
    summary = run(["--simulate=500", "--seed=0", f"--output={out}"])
    act_as_service(monkeypatch, f"sqlite:///{out}/nightwatch.db")
    return out, {name: count for name, count in summary.by_class.items() if count}


def classes_in_hot(out) -> Counter:
    with HotStore(f"sqlite:///{out}/nightwatch.db").engine.connect() as conn:
        return Counter(conn.execute(sa.select(events.c.event_class)).scalars())


def retention(out, when: str, *extra: str) -> None:
    assert main(["retention", "--output", str(out), "--now", when, *extra]) == 0


def test_the_guides_table_tier_by_tier(night, capsys):
    out, stored = night
    assert set(stored) >= {"critical", "significant", "interesting", "routine", "rejected"}
    archived_before = len(read_archive(str(out / "archive")))
    # The table archives no rejected event: the pipeline never writes one there.
    archived = Counter(record["event_class"] for record in read_archive(str(out / "archive")))
    assert "rejected" not in archived and archived_before == sum(stored.values()) - stored["rejected"]

    retention(out, "2099-01-01", "--dry-run")  # a dry run changes nothing
    assert classes_in_hot(out) == Counter(stored)

    # Two days on: rejected events have left the hot store (24 h), still in warm (30 days).
    retention(out, _days(2))
    assert "rejected" not in classes_in_hot(out)
    assert Counter(read_warm(str(out / "warm")).column("event_class").to_pylist())["rejected"] == stored["rejected"]
    # Ten days: routine gone from hot (7 days).
    retention(out, _days(10))
    assert set(classes_in_hot(out)) == {"critical", "significant", "interesting"}
    # Forty days: rejected gone from warm (30 days, then deleted); the archive never had them.
    retention(out, _days(40))
    warm = Counter(read_warm(str(out / "warm")).column("event_class").to_pylist())
    assert "rejected" not in warm
    assert len(read_archive(str(out / "archive"))) == archived_before
    # Two years: significant out of hot (1 year) but permanent in warm; routine out of warm (1 year), archived.
    retention(out, _days(730))
    assert set(classes_in_hot(out)) == {"critical"}
    warm = Counter(read_warm(str(out / "warm")).column("event_class").to_pylist())
    assert warm["significant"] == stored["significant"] and "routine" not in warm
    archive = Counter(record["event_class"] for record in read_archive(str(out / "archive")))
    assert archive["routine"] == stored["routine"] and archive["interesting"] == stored["interesting"]
    # Critical: in the hot store permanently.
    assert classes_in_hot(out)["critical"] == stored["critical"]
    # The tiers still agree with the table.
    assert main(["verify", "--output", str(out), "--now", _days(730)]) == 0
    capsys.readouterr()
    # Again: nothing more to do.
    retention(out, _days(730))
    assert "deleted: nothing" in capsys.readouterr().out.split("hot")[1]


def test_never_deletes_the_last_copy(night, capsys):
    out, stored = night
    for path in [*(out / "warm").rglob("*.parquet"), *(out / "archive").rglob("*.avro")]:  # both tiers lost
        path.unlink()
    retention(out, _days(10))
    said = capsys.readouterr().out
    assert "kept past their time, as the next tier lacks a copy: " in said
    # Routine is kept in warm and archive after the hot store: with neither holding it, the hot copy stays.
    assert classes_in_hot(out)["routine"] == stored["routine"]
    # Rejected events are kept nowhere after their warm period: a copy in warm is still required before.
    assert classes_in_hot(out)["rejected"] == stored["rejected"]


def _days(n: int) -> str:
    from datetime import timedelta

    from core.event import utcnow

    return (utcnow() + timedelta(days=n)).isoformat()


def test_a_rejected_event_archived_by_an_older_nightwatch_leaves_the_archive_at_once(night, capsys):
    """Before the table was followed, rejected events sat in the archive for 30 days: retention removes them now,
    at any age, and leaves every other archived event."""
    from datetime import datetime, timezone

    from core.event import Event
    from store.tiers import write_archive_partition

    out, _stored = night
    archived_before = len(read_archive(str(out / "archive")))
    now = datetime.now(timezone.utc)
    old = Event(
        event_id="ztf:legacy-rejected",
        source="ztf",
        kind="optical_transient",
        event_time=now,
        received_time=now,
        ra=10.0,
        dec=-5.0,
        raw=b"packet",
        raw_format="ztf-avro",
        event_class="rejected",
        night="2026-01-01",
    )
    write_archive_partition(str(out / "archive"), "2026-01-01", "ztf", [old])
    assert len(read_archive(str(out / "archive"))) == archived_before + 1
    retention(out, _days(0))
    classes = Counter(record["event_class"] for record in read_archive(str(out / "archive")))
    assert "rejected" not in classes and sum(classes.values()) == archived_before
