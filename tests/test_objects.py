"""Objects, light curves and cutouts, on the real sample packets: decoded history (ZTF prv_candidates and fp_hists,
Rubin prvDiaSources), the hot store's `lightcurve` table and the warm tier's copy, retention, the API's
`/v1/objects`, `/lightcurve` and `/cutouts`, and the console's Objects page (AppTest).

Oracles are independent of the code under test: fastavro reads the packets, astropy converts the times.
"""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from fastapi.testclient import TestClient
from PIL import Image

from access import accounts, apikeys
from api.app import create_app
from api.auth import ApiSettings
from config import load_config
from core.decoders import DecodeFailure, PacketDecoder
from core.event import Event
from store.hot import HotStore
from store.schema import events, lightcurve
from tests.conftest import DATA

ZTF_HISTORY = DATA / "ztf" / "2019_01_10_739260766315010006.avro"  # 28 prior entries: 22 detections, 6 limits
ZTF_FORCED = DATA / "ztf" / "ztf_20250302_programid1_ZTF17aaarzyp_2982177112815010003.v4_02.avro"  # fp_hists
RUBIN_HISTORY = DATA / "rubin" / "169298433314652171_169298433314652171.avro"  # one prvDiaSource
APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def record_of(path: Path) -> dict:
    with path.open("rb") as handle:
        return next(iter(fastavro.reader(handle)))


def decoded(path_or_bytes, origin: str = "test") -> Event | DecodeFailure:
    payload = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    from core.event import Packet

    return PacketDecoder(load_config().sources).decode(Packet(payload=payload, origin=origin))[0]


# --- decode ---------------------------------------------------------------------------------------------------


def test_ztf_history_becomes_points_with_mjd_utc_and_band():
    record = record_of(ZTF_HISTORY)
    event = decoded(ZTF_HISTORY)
    assert isinstance(event, Event)
    by_id = {point["point_id"]: point for point in event.lightcurve}
    prior = [p for p in record["prv_candidates"] if p["candid"] is not None and p["magpsf"] is not None]
    limits = [p for p in record["prv_candidates"] if p["candid"] is None]
    assert len(prior) == 22 and len(limits) == 6
    assert len(event.lightcurve) == 1 + len(prior) + len(limits)  # the candidate, detections, upper limits
    for entry in prior:
        point = by_id[str(entry["candid"])]
        assert point["kind"] == "detection"
        assert point["band"] == {1: "g", 2: "r", 3: "i"}[entry["fid"]]
        assert point["mag"] == pytest.approx(entry["magpsf"])
        # ZTF jd is UTC: MJD = JD - 2400000.5, and the ISO time is that instant (astropy as the oracle)
        assert point["mjd"] == pytest.approx(entry["jd"] - 2400000.5, abs=1e-7)
        oracle = Time(entry["jd"], format="jd", scale="utc").to_datetime(timezone=timezone.utc)
        assert abs(datetime.fromisoformat(point["time"].replace("Z", "+00:00")) - oracle) < timedelta(milliseconds=1)
        assert point["time"].endswith("Z")
    nondetections = [p for p in event.lightcurve if p["kind"] == "nondetection"]
    assert sorted(p["limit_mag"] for p in nondetections) == pytest.approx(sorted(p["diffmaglim"] for p in limits))
    assert [p["mjd"] for p in event.lightcurve] == sorted(p["mjd"] for p in event.lightcurve)


def test_ztf_forced_photometry_and_rubin_history_on_the_tai_scale():
    forced = [p for p in decoded(ZTF_FORCED).lightcurve if p["kind"] == "forced"]
    assert len(forced) == len(record_of(ZTF_FORCED)["fp_hists"]) == 14
    assert all(p["flux_err"] is not None and (p["mag"] is not None or p["limit_mag"] is not None) for p in forced)
    record = record_of(RUBIN_HISTORY)
    event = decoded(RUBIN_HISTORY)
    prior = record["prvDiaSources"][0]
    point = next(p for p in event.lightcurve if p["point_id"] == str(prior["diaSourceId"]))
    utc_mjd = Time(prior["midpointMjdTai"], format="mjd", scale="tai").utc.mjd  # Rubin times are TAI
    assert point["mjd"] == pytest.approx(utc_mjd, abs=1e-7) and point["band"] == prior["band"]
    assert point["flux"] == pytest.approx(prior["psfFlux"])


def _rewritten(path: Path, change) -> bytes:
    with path.open("rb") as handle:
        reader = fastavro.reader(handle)
        schema, records = reader.writer_schema, list(reader)
    change(records[0])
    out = io.BytesIO()
    fastavro.writer(out, schema, records)
    return out.getvalue()


def test_a_packet_with_a_bad_history_is_dead_lettered_not_raised():
    def impossible_time(record):
        record["prv_candidates"][3]["jd"] = 5.0

    failure = decoded(_rewritten(ZTF_HISTORY, impossible_time))
    assert isinstance(failure, DecodeFailure)
    assert "bad history" in failure.reason and "prv_candidates[3].jd" in failure.reason
    assert failure.payload  # the bytes are kept for the dead letter


# --- the store, the API, the console ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A real batch run over the ZTF and Rubin sample packets."""
    from pipeline.batch import run

    output = tmp_path_factory.mktemp("objects")
    summary = run([f"--input={DATA}/*/*.avro", f"--output={output}", "--run_id=objects-run"])
    assert summary.ok, summary.table()
    store = HotStore(f"sqlite:///{output / 'nightwatch.db'}")
    store.ensure_schema()
    accounts.create_user_as_system(store, "test", "olga", "observer", "a-long-enough-password")
    yield output, store
    store.close()


@pytest.fixture(scope="module")
def client(night):
    output, store = night
    token, _ = apikeys.create_key(store, "test", "olga", "observer")
    settings = ApiSettings(
        store_url=store.url, warm_root=str(output / "warm"), archive_root=str(output / "archive"), burst=10_000
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def test_prior_detections_appear_in_the_api_light_curve(client):
    record = record_of(ZTF_HISTORY)
    answer = client.get(f"/v1/objects/{record['objectId']}/lightcurve")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    points = {point["point_id"]: point for point in body["points"]}
    for entry in record["prv_candidates"]:
        if entry["candid"] is None:
            continue
        point = points[str(entry["candid"])]
        assert point["mjd"] == pytest.approx(entry["jd"] - 2400000.5, abs=1e-7)
        assert point["band"] == {1: "g", 2: "r", 3: "i"}[entry["fid"]] and point["time"].endswith("Z")
        assert point["tier"] == "hot" and point["event_id"] == f"ztf:{record['candid']}"
    assert body["kinds"] == {"detection": 23, "nondetection": 6}
    # before: /objects/{id}/events had the one event and no history at all
    assert len(client.get(f"/v1/objects/{record['objectId']}/events").json()["data"]) == 1


def test_cutouts_as_shipped_fits_and_as_png(client, night):
    output, store = night
    from store.tiers import archive_entries

    archived = sorted(entry.event_id for entry in archive_entries(str(output / "archive")))
    event_id = next(e for e in archived if e.startswith("ztf:"))
    record = next(
        record_of(path) for path in (DATA / "ztf").glob("*.avro") if f"ztf:{record_of(path)['candid']}" == event_id
    )
    fits_answer = client.get(f"/v1/events/{event_id}/cutouts/science")
    assert fits_answer.status_code == 200 and fits_answer.headers["content-type"] == "application/fits"
    assert fits_answer.content == record["cutoutScience"]["stampData"]  # byte for byte as shipped (gzipped)
    with fits.open(io.BytesIO(gzip.decompress(fits_answer.content))) as hdus:
        shape = hdus[0].data.shape
    png = client.get(f"/v1/events/{event_id}/cutouts/difference", params={"format": "png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).format == "PNG" and shape[0] > 0
    assert client.get(f"/v1/events/{event_id}/cutouts/sky").status_code == 422
    rejected = (
        store.engine.connect().execute(sa.select(events.c.event_id).where(events.c.event_class == "rejected")).scalar()
    )
    assert client.get(f"/v1/events/{rejected}/cutouts/science").status_code == 404  # rejected: never archived


def test_object_list_filters(client, night):
    _, store = night
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events).where(events.c.object_id.is_not(None))).all()
    latest: dict[str, object] = {}
    for row in sorted(rows, key=lambda r: (r.event_time, r.event_id)):
        latest[row.object_id] = row
    everything = client.get("/v1/objects", params={"limit": 1000}).json()["data"]
    assert {o["object_id"] for o in everything} == set(latest)
    assert [o["last_seen"] for o in everything] == sorted((o["last_seen"] for o in everything), reverse=True)

    routine = client.get("/v1/objects", params={"class": "routine"}).json()["data"]
    assert {o["object_id"] for o in routine} == {k for k, r in latest.items() if r.event_class == "routine"}
    bright = client.get("/v1/objects", params={"mag_max": 17, "limit": 1000}).json()["data"]
    assert {o["object_id"] for o in bright} == {k for k, r in latest.items() if r.mag is not None and r.mag <= 17}
    since = client.get("/v1/objects", params={"since": "2025-01-01T00:00:00Z", "limit": 1000}).json()["data"]
    cut = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert {o["object_id"] for o in since} == {
        k for k, r in latest.items() if r.event_time.replace(tzinfo=timezone.utc) >= cut
    }
    centre = SkyCoord(75.2, 35.36, unit="deg")
    near = client.get("/v1/objects", params={"ra": 75.2, "dec": 35.36, "radius": 2, "limit": 1000}).json()["data"]
    expected = {k for k, r in latest.items() if centre.separation(SkyCoord(r.ra, r.dec, unit="deg")) <= 2 * u.deg}
    assert {o["object_id"] for o in near} == expected and "ZTF17aaacxxf" in expected
    assert client.get("/v1/objects", params={"ra": 75.2}).status_code == 422  # a cone needs all three

    paged, url = [], "/v1/objects?limit=7"
    while url:
        page = client.get(url).json()
        paged += page["data"]
        url = page["next"]
    assert [o["object_id"] for o in paged] == [o["object_id"] for o in everything]

    one = client.get("/v1/objects/ZTF17aaacxxf").json()
    assert one["n_events"] == 1 and one["class_scores"] == {one["event_class"]: one["score"]}
    assert one["last_seen_mjd"] == pytest.approx(Time(one["last_seen"].rstrip("Z"), scale="utc").mjd, abs=1e-6)
    assert client.get("/v1/objects/nope").status_code == 404


def test_light_curve_survives_retention_as_the_table_allows(night, tmp_path):
    import shutil

    from ops.retention import apply_retention
    from store import objects

    source, _ = night
    output = shutil.copytree(source, tmp_path / "copy")
    store = HotStore(f"sqlite:///{output / 'nightwatch.db'}")
    try:
        record = record_of(ZTF_HISTORY)  # a rejected event: 24 hours hot, 30 days warm
        config = load_config()
        warm, archive = str(output / "warm"), str(output / "archive")
        received = store.engine.connect().execute(sa.select(sa.func.max(events.c.received_time))).scalar()
        two_days = received.replace(tzinfo=timezone.utc) + timedelta(days=2)
        report = apply_retention(store, warm, archive, config.retention, two_days, dry_run=False)
        assert report.lightcurve_points_deleted > 0
        assert store.count(lightcurve, object_id=record["objectId"]) == 0  # out of the hot store with its event
        kept = objects.light_curve(store.engine, warm, record["objectId"])
        assert len(kept) == 29 and {p["tier"] for p in kept} == {"warm"}  # the warm tier still has it
        apply_retention(store, warm, archive, config.retention, two_days + timedelta(days=40), dry_run=False)
        assert objects.light_curve(store.engine, warm, record["objectId"]) == []  # past 30 days warm: gone
    finally:
        store.close()


def test_console_objects_page_shows_the_light_curve_per_band(night, monkeypatch):
    from streamlit.testing.v1 import AppTest

    output, store = night
    monkeypatch.setenv("NIGHTWATCH_OUTPUT", str(output))
    monkeypatch.delenv("NIGHTWATCH_DB_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_name").input("olga")
    at.text_input(key="login_password").input("a-long-enough-password")
    at.button[0].click().run()
    at.sidebar.radio(key="page").set_value("Objects").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Objects"
    at.selectbox(key="object_chosen").set_value("ZTF17aaacxxf").run()
    assert not at.exception, at.exception
    shown = "\n".join(str(m.value) for m in [*at.caption, *at.markdown])
    assert "29 points: 23 detection, 6 nondetection" in shown and "MJD 58493.26" in shown
    charts = at.get("vega_lite_chart")
    assert charts, "the light curve chart is drawn"
    spec = charts[0].proto.spec
    assert '"row"' in spec and '"band"' in spec  # one panel per band
    tables = [frame.value for frame in at.dataframe]
    points = next(t for t in tables if "MJD (UTC)" in t.columns)
    assert len(points) == 29 and set(points["band"]) == {"g", "r"}
    at.selectbox(key="objects_class").set_value("routine").run()
    listed = next(t for t in (frame.value for frame in at.dataframe) if "object" in t.columns)
    assert set(listed["class"]) == {"routine"}


def test_object_answers_give_times_in_the_one_format(client):
    """ISO 8601 in UTC with Z, as every REST answer, the live feed and the alert history (tests/test_api.py)."""
    import re

    iso = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")

    def times(value):
        if isinstance(value, dict):
            return [t for item in value.values() for t in times(item)]
        if isinstance(value, list):
            return [t for item in value for t in times(item)]
        return [value] if isinstance(value, str) and iso.match(value) else []

    answers = [client.get(path).json() for path in ("/v1/objects", "/v1/objects/ZTF17aaacxxf")]
    answers.append(client.get("/v1/objects/ZTF17aaacxxf/lightcurve").json())
    found = times(answers)
    assert len(found) > 30 and all(moment.endswith("Z") and "+00:00" not in moment for moment in found)
