"""Day and night (issue 16 item 5): health judges a source's silence only while it is expected to send: an optical
survey while it is dark at the site, a satellite stream around the clock. The clock is given, never the wall's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from config.settings import load_config
from core.night import is_dark, sun_altitude
from ops import health
from ops.health.schedule import expectations
from tests.conftest import window_rows

CONFIG = load_config()
SITE = CONFIG.sources.site
# Cerro Pachon in late November (southern summer): dark from about 01:00 to 08:30 UTC.
NIGHT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 01:00 local, the Sun far below the horizon
DAY = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # 13:00 local, the Sun high


def feeds(store, sources: dict[str, datetime]) -> None:
    """Ten minutes of normal stream windows for each source, ending at the time given for it (GCN's 0.1 a minute
    rounds to nothing a window: one notice each)."""
    for source, end in sources.items():
        rows = window_rows(end, gcn={"received": 1, "stored": 1, "rate_per_min": 1.0})
        store.upsert_metrics([row for row in rows if row["source"] == source])


def test_the_site_is_dark_at_night_and_light_by_day():
    assert sun_altitude(NIGHT, SITE.latitude_deg, SITE.longitude_deg) < -30
    assert sun_altitude(DAY, SITE.latitude_deg, SITE.longitude_deg) > 60
    assert is_dark(NIGHT, SITE.latitude_deg, SITE.longitude_deg)
    assert not is_dark(DAY, SITE.latitude_deg, SITE.longitude_deg)
    by_day = expectations(CONFIG.sources, DAY, {})
    assert not by_day["ztf"].expected and not by_day["rubin"].expected and by_day["gcn"].expected
    assert by_day["ztf"].rate_per_min == 0 and by_day["gcn"].rate_per_min == 0.1
    assert all(entry.expected for entry in expectations(CONFIG.sources, NIGHT, {}).values())


def test_daytime_silence_of_an_optical_survey_is_not_sev1(store):
    # The surveys stopped at dawn; GCN last sent 30 min ago (within its 60 quiet minutes).
    dawn = DAY - timedelta(hours=7)
    feeds(store, {"ztf": dawn, "rubin": dawn, "gcn": DAY - timedelta(minutes=30)})
    report = health.evaluate(store, CONFIG, DAY)
    assert report.stale  # nothing processed in the last 15 minutes ...
    assert report.severity != "SEV-1", report.reason  # ... and that is expected in daytime
    assert "daytime" in report.schedule["ztf"] and "not expected now" in report.schedule["ztf"]
    rate = report.panel("Event rate")
    assert rate.source_status["ztf"] == "n/a" and "ztf not expected now" in rate.normal


def test_night_silence_of_an_optical_survey_is_sev1(store):
    # The same silence, at night: the surveys should be sending.
    feeds(store, {"ztf": NIGHT - timedelta(hours=1), "rubin": NIGHT - timedelta(hours=1), "gcn": NIGHT})
    feeds(store, {"gcn": NIGHT - timedelta(minutes=30)})
    report = health.evaluate(store, CONFIG, NIGHT + timedelta(minutes=20))
    assert report.severity == "SEV-1", report.reason
    assert "ztf expects 700.0/min (night at Cerro Pachon" in report.reason
    assert "SILENT" in report.schedule["rubin"]


def test_gcn_silence_is_judged_around_the_clock(store):
    # Daytime, every source quiet; GCN (expected always) has been silent for two hours: a stopped feed.
    feeds(store, {"ztf": DAY - timedelta(hours=7), "gcn": DAY - timedelta(hours=2)})
    report = health.evaluate(store, CONFIG, DAY)
    assert report.severity == "SEV-1", report.reason
    assert "gcn expects 0.1/min (around the clock)" in report.reason and "ztf" not in report.reason.split("while")[1]
    # At night too, with the surveys flowing, a silent GCN is named by the schedule (its rate is too low to judge).
    feeds(store, {"ztf": NIGHT, "rubin": NIGHT, "gcn": NIGHT - timedelta(hours=2)})
    assert "SILENT" in health.evaluate(store, CONFIG, NIGHT).schedule["gcn"]


@pytest.mark.parametrize("when", [NIGHT, DAY])
def test_an_empty_store_is_sev1_day_or_night(store, when):
    # GCN is always expected and has never been seen: nothing runs at all.
    assert health.evaluate(store, CONFIG, when).severity == "SEV-1"


def test_the_cli_prints_each_sources_expectation(tmp_path, capsys):
    from cli.main import main
    from store.hot import HotStore

    store = HotStore(f"sqlite:///{tmp_path}/nightwatch.db")
    store.ensure_schema()
    feeds(store, {"gcn": datetime.now(UTC)})
    store.close()
    main(["health", "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert "source gcn: expected, sending: around the clock" in out
    assert "source ztf:" in out and "at Cerro Pachon (Sun" in out
