"""One count of each level everywhere: the run summary, the stream summary, the alert portal, the monitoring page and
the API agree, read through the functions each of them uses, before and after an association raise and a promotion.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import sqlalchemy as sa
from fastapi.testclient import TestClient

from access import apikeys
from api.app import create_app
from api.auth import ApiSettings
from cli.stream import run_levels
from config import load_config
from core.event import utcnow
from ops import responses
from ops.health import evaluate
from ops.levels import LEVELS, level_counts
from store.hot import HotStore
from store.schema import events, review_queue
from tests.conftest import copy_night
from tests.test_access import with_people
from tests.test_dashboard import goto, login

RUN_ID = "console-test"  # the session's simulated night (tests/conftest.py)


def summary_table_levels(table: str) -> dict[str, int]:
    """The levels as the printed summary says them."""
    critical, high = re.search(r"alerts CRITICAL / HIGH\s+(\d+) / (\d+)", table).groups()
    medium = re.search(r"review queue \(MEDIUM\)\s+(\d+) at MEDIUM", table).group(1)
    low = re.search(r"routine \(LOW, archived\)\s+(\d+)", table).group(1)
    return {"CRITICAL": int(critical), "HIGH": int(high), "MEDIUM": int(medium), "LOW": int(low)}


def everywhere(store: HotStore, client: TestClient) -> dict[str, dict[str, int]]:
    """Each place's count per level (totals), read the way that place reads it."""
    from pipeline.batch import RunSummary

    stored = {level: count.total for level, count in level_counts(store).items()}
    summary = RunSummary(RUN_ID, {}, {}, "", "", levels=run_levels(store.url, RUN_ID))  # what batch.py prints
    api = client.get("/v1/alerts/counts").json()
    with store.engine.connect() as conn:
        nights = set(conn.execute(sa.select(events.c.night).distinct()).scalars())
    config, now = load_config(), utcnow()
    volume = 0
    for night in nights:  # the monitoring page's alert-volume panel, night by night
        panel = next(p for p in evaluate(store, config, now, night=night).panels if p.name == "Alert volume")
        volume += int(panel.value)
    return {
        "portal and monitor (ops.levels)": stored,
        "run summary (printed)": summary_table_levels(summary.table()),
        "stream summary (cli.stream.run_levels)": run_levels(store.url, RUN_ID),
        "API /v1/alerts/counts": {row["level"]: row["total"] for row in api["levels"]},
        "alert-volume panel (CRITICAL + HIGH)": {"CRITICAL+HIGH": volume},
    }


def agree(places: dict[str, dict[str, int]]) -> dict[str, int]:
    reference = places["portal and monitor (ops.levels)"]
    for place, counts in places.items():
        if "CRITICAL+HIGH" in counts:
            assert counts["CRITICAL+HIGH"] == reference["CRITICAL"] + reference["HIGH"], (place, counts, reference)
        else:
            assert counts == reference, (place, counts, reference)
    return reference


def test_every_place_gives_one_count_per_level(night_template, tmp_path, monkeypatch):
    folder = copy_night(night_template, tmp_path / "out")
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    with_people(store)
    token, _ = apikeys.create_key(store, "root", "obs", "observer")
    client = TestClient(create_app(ApiSettings(store_url=store.url, burst=10_000)))
    client.headers["Authorization"] = f"Bearer {token}"
    with client:
        before = agree(everywhere(store, client))
        assert before["CRITICAL"] + before["HIGH"] > 0 and before["MEDIUM"] > 0

        # An association raises a MEDIUM event (pending in the review queue) to HIGH: it counts once, as HIGH. (Its
        # trigger is a rejected notice, which a raise leaves as it is, so only the counterpart moves.)
        with store.engine.connect() as conn:
            waiting = (
                conn.execute(
                    sa.select(review_queue.c.event_id).where(review_queue.c.status == "pending").order_by("event_id")
                )
                .scalars()
                .all()
            )
            trigger = conn.execute(
                sa.select(events.c.event_id).where(events.c.source == "gcn", events.c.event_class == "rejected")
            ).scalar()
        link = SimpleNamespace(trigger_id=trigger, counterpart_id=waiting[0], separation_deg=1.0, time_offset_s=60.0)
        assert store.apply_association(link) is not None
        raised = agree(everywhere(store, client))
        assert raised["HIGH"] == before["HIGH"] + 1 and raised["MEDIUM"] == before["MEDIUM"] - 1

        # A promotion from the review queue: HIGH one more, MEDIUM one less, everywhere.
        responses.decide_review(store, "ops", waiting[1], "promote", "a real transient")
        promoted = agree(everywhere(store, client))
        assert promoted["HIGH"] == raised["HIGH"] + 1 and promoted["MEDIUM"] == raised["MEDIUM"] - 1

    # The console shows the same: the portal's counters and the monitoring page's line (AppTest).
    monkeypatch.setenv("NIGHTWATCH_OUTPUT", str(folder))
    monkeypatch.delenv("NIGHTWATCH_DB_URL", raising=False)
    waiting_now = {level: count.waiting for level, count in level_counts(store).items()}
    at = goto(login("obs"), "Alerts")
    portal = {metric.label: int(str(metric.value).replace(",", "")) for metric in at.metric if metric.label in LEVELS}
    assert portal == waiting_now
    at = goto(at, "Monitoring")
    line = next(str(m.value) for m in at.markdown if "Alerts by level" in str(m.value))
    for level, count in level_counts(store).items():
        assert f"**{level}** {count.waiting:,} waiting of {count.total:,}" in line
    store.close()
