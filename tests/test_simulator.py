"""Tests for devtools.simulator: real wire formats, determinism, mix, corruption, versions.

Why this module is long: each wire format (ZTF v3/v4, Rubin v7-v11 container and Confluent wire, GCN JSON and
VOEvent) is checked against the official schemas and the real decoders, one group of tests per format.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import re
import struct
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fastavro
import fastavro.schema
import pytest

from devtools.simulator import (
    CLASSES,
    DEFAULT_START,
    SOURCES,
    SimulatedPacket,
    available_rubin_versions,
    generate_packets,
    parse_mix,
    rubin_schema_id,
    write_packets,
)
from tests.conftest import DATA

UTC = timezone.utc
SHARED = DATA  # the real public sample packets (CI has them beside the clone)
ZTF_SCHEMAS = Path(__file__).resolve().parents[1] / "devtools" / "simulator" / "schemas" / "ztf"


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    assert path.exists(), f"real sample {path} not available"
    return path


ALL_MIX = {"ztf": 0.4, "rubin": 0.3, "gcn": 0.3}


# --------------------------------------------------------------------------------------
# independent decoders (schemas loaded here, not through the simulator)
# --------------------------------------------------------------------------------------


def _rubin_dir() -> Path:
    spec = importlib.util.find_spec("lsst.alert.packet")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


_RUBIN_SCHEMAS: dict[int, dict] = {}


def rubin_reader_schema(schema_id: int) -> dict:
    """Official Rubin schema for a Confluent schema id, via fastavro.schema.load_schema."""
    if schema_id not in _RUBIN_SCHEMAS:
        major, minor = divmod(schema_id, 100)
        path = _rubin_dir() / str(major) / str(minor) / f"lsst.v{major}_{minor}.alert.avsc"
        if not path.exists():
            raise KeyError(f"unknown schema id {schema_id}")
        _RUBIN_SCHEMAS[schema_id] = fastavro.schema.load_schema(path)
    return _RUBIN_SCHEMAS[schema_id]


def read_container(payload: bytes) -> tuple[dict, dict]:
    reader = fastavro.reader(io.BytesIO(payload))
    records = list(reader)
    assert len(records) == 1
    return records[0], reader.writer_schema


def read_confluent(payload: bytes) -> tuple[int, dict]:
    if len(payload) < 5 or payload[0] != 0:
        raise ValueError("bad Confluent magic byte")
    (schema_id,) = struct.unpack(">I", payload[1:5])
    schema = rubin_reader_schema(schema_id)
    body = io.BytesIO(payload[5:])
    record = fastavro.schemaless_reader(body, schema)
    if body.tell() != len(payload) - 5:
        raise ValueError("trailing bytes after the record")
    return schema_id, record


def read_gcn_json(payload: bytes) -> dict:
    notice = json.loads(payload.decode("utf-8"))
    if not isinstance(notice, dict) or "trigger_time" not in notice:
        raise ValueError("not a GCN notice with trigger_time")
    return notice


def decode(packet: SimulatedPacket):
    """The packet's record, notice or VOEvent root; raises for undecodable or off-sky packets."""
    if packet.name.endswith(".avro"):
        decoded = read_container(packet.payload)[0]
    elif packet.name.endswith(".confluent"):
        decoded = read_confluent(packet.payload)[1]
    elif packet.name.endswith(".json"):
        decoded = read_gcn_json(packet.payload)
    elif packet.name.endswith(".xml"):
        decoded = ET.fromstring(packet.payload)
    else:
        raise AssertionError(f"unexpected packet name {packet.name}")
    if isinstance(decoded, ET.Element):
        dec = voe_position(decoded)[1]
    else:
        dec = (decoded.get("candidate") or decoded.get("diaSource") or decoded).get("dec")
    if dec is not None and not -90 <= dec <= 90:
        raise ValueError(f"declination {dec} out of range")
    return decoded


def voe_params(root: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in root.iter("Param")}


def voe_position(root: ET.Element) -> tuple[float, float, float, str]:
    ww = root.find("WhereWhen")
    assert ww is not None
    c1 = next(ww.iter("C1")).text
    c2 = next(ww.iter("C2")).text
    err = next(ww.iter("Error2Radius")).text
    iso = next(ww.iter("ISOTime")).text
    return float(c1), float(c2), float(err), iso


@pytest.fixture(scope="module")
def big_run() -> list[SimulatedPacket]:
    return list(generate_packets(2000, seed=7, mix=ALL_MIX, rubin_wire="both"))


# --------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------


def test_ztf_container_roundtrip():
    packets = list(generate_packets(60, seed=1, mix={"ztf": 1}))
    assert {p.source for p in packets} == {"ztf"}
    ztf_schema = fastavro.schema.load_schema_ordered(
        [str(ZTF_SCHEMAS / f"{n}.avsc") for n in ("cutout", "fp_hist", "prv_candidate", "candidate", "alert")]
    )
    for p in packets:
        rec, writer_schema = read_container(p.payload)
        assert writer_schema["name"] == "ztf.alert"
        assert p.name == f"ztf_{rec['candid']}.avro"
        assert rec["schemavsn"] == "4.02"
        assert re.fullmatch(r"ZTF\d\d[a-z]{7}", rec["objectId"])
        cand = rec["candidate"]
        assert cand["candid"] == rec["candid"] and rec["candid"] > 10**17
        assert cand["fid"] in (1, 2, 3)
        assert cand["isdiffpos"] in ("t", "f")
        assert 14.0 <= cand["magpsf"] <= 21.6
        assert -31 <= cand["dec"] <= 90 and 0 <= cand["ra"] < 360.01
        assert cand["ndethist"] >= 1 and cand["ncovhist"] >= cand["ndethist"]
        assert cand["jdstarthist"] <= cand["jd"] + 1e-9
        assert 0 <= cand["rb"] <= 1 and 0 <= cand["drb"] <= 1
        assert cand["ssdistnr"] == -999.0 or 0 <= cand["ssdistnr"] <= 12
        assert isinstance(rec["prv_candidates"], list)
        for prv in rec["prv_candidates"]:
            assert prv["jd"] < cand["jd"]
        for key in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            stamp = rec[key]["stampData"]
            assert stamp[:2] == b"\x1f\x8b"  # gzip
        # the record also validates against the official v4.02 schema
        assert fastavro.validation.validate(rec, ztf_schema)


def test_rubin_container_roundtrip():
    packets = list(generate_packets(40, seed=2, mix={"rubin": 1}))
    for p in packets:
        assert p.name.endswith(".avro")
        rec, writer_schema = read_container(p.payload)
        assert writer_schema["name"] == "lsst.v9_0.alert"
        src = rec["diaSource"]
        assert p.name == f"rubin_{src['diaSourceId']}.avro"
        assert rec["diaSourceId"] == src["diaSourceId"]
        assert src["band"] in "ugrizy"
        assert 0.0 <= src["reliability"] <= 1.0
        assert src["psfFlux"] > 0 and src["psfFluxErr"] > 0
        mag = 31.4 - 2.5 * math.log10(src["psfFlux"])
        assert 13 < mag < 25
        assert src["snr"] == pytest.approx(src["psfFlux"] / src["psfFluxErr"], rel=1e-3)
        obj = rec["diaObject"]
        assert obj["diaObjectId"] == src["diaObjectId"]
        assert obj["nDiaSources"] >= 1
        if obj["nDiaSources"] == 1:
            assert rec["prvDiaSources"] is None
        else:
            assert 1 <= len(rec["prvDiaSources"]) <= obj["nDiaSources"] - 1
        assert rec["cutoutDifference"].startswith(b"SIMPLE  =")
        # TAI is ~37 s ahead of UTC: midpoint lies in the hour after the default start
        utc_mjd = src["midpointMjdTai"] - 37.0 / 86400
        start_mjd = DEFAULT_START.timestamp() / 86400 + 40587.0
        assert start_mjd <= utc_mjd <= start_mjd + 1 / 24


def test_same_fields_as_real_packets():
    """The simulated records carry exactly the fields of real packets of the same version."""
    real_ztf, _ = read_container(
        shared_file("ztf/ztf_20250302_programid1_ZTF17aaarzyp_2982177112815010003.v4_02.avro").read_bytes()
    )
    real_rubin, _ = read_container(shared_file("rubin/169298432598474793_169298432598474793.avro").read_bytes())
    for p in generate_packets(30, seed=9, mix={"ztf": 1, "rubin": 1}):
        rec = decode(p)
        if p.source == "ztf":
            assert set(rec) == set(real_ztf)
            assert set(rec["candidate"]) == set(real_ztf["candidate"])
            for prv in rec["prv_candidates"]:
                assert set(prv) == set(real_ztf["prv_candidates"][0])
        else:
            assert set(rec["diaSource"]) == set(real_rubin["diaSource"])
            assert set(rec["diaObject"]) == set(real_rubin["diaObject"])


def test_container_matches_fastavro_writer():
    """The cached-header container holds what fastavro.writer writes: the same schema (its JSON keys sorted,
    where fastavro's order changes between processes), the same record, the same data block bytes."""
    for p in generate_packets(20, seed=10, mix={"ztf": 1, "rubin": 1}):
        record, writer_schema = read_container(p.payload)
        buf = io.BytesIO()
        fastavro.writer(buf, fastavro.parse_schema(writer_schema), [record], sync_marker=p.payload[-16:])
        theirs = buf.getvalue()
        again, their_schema = read_container(theirs)
        assert again == record and their_schema == writer_schema
        header_end = theirs.index(p.payload[-16:])  # the first sync marker ends the header
        assert theirs[header_end:] == p.payload[p.payload.index(p.payload[-16:]) :]


def test_rubin_confluent_wire():
    schema = rubin_reader_schema(900)
    packets = list(generate_packets(30, seed=3, mix={"rubin": 1}, rubin_wire="confluent"))
    for p in packets:
        assert p.name.endswith(".confluent")
        assert p.payload[0] == 0
        assert struct.unpack(">I", p.payload[1:5])[0] == 900
        rec = fastavro.schemaless_reader(io.BytesIO(p.payload[5:]), schema)
        assert p.name == f"rubin_{rec['diaSourceId']}.confluent"


def test_rubin_wire_both_alternates():
    packets = list(generate_packets(20, seed=4, mix={"rubin": 1}, rubin_wire="both"))
    kinds = [p.name.rsplit(".", 1)[1] for p in packets]
    assert kinds == ["avro", "confluent"] * 10


def test_rubin_schema_ids():
    assert rubin_schema_id("9.0") == 900
    assert rubin_schema_id("11.1") == 1101
    assert rubin_schema_id("7.4") == 704


def test_every_rubin_version_roundtrips():
    versions = available_rubin_versions()
    assert "9.0" in versions
    expected = [
        f"{path.parent.name}.{path.name}"
        for path in sorted(_rubin_dir().glob("*/*"))
        if path.is_dir() and path.parent.name.isdigit() and path.name.isdigit() and 7 <= int(path.parent.name) <= 11
    ]
    assert expected and set(expected) <= set(versions)
    for version in expected:
        major, minor = (int(x) for x in version.split("."))
        packets = list(generate_packets(12, seed=5, mix={"rubin": 1}, rubin_wire="both", rubin_version=version))
        assert {p.true_class for p in packets} <= set(CLASSES)
        for p in packets:
            if p.name.endswith(".avro"):
                rec, writer_schema = read_container(p.payload)
                assert writer_schema["name"] == f"lsst.v{major}_{minor}.alert"
            else:
                schema_id, rec = read_confluent(p.payload)
                assert schema_id == major * 100 + minor
            assert fastavro.validation.validate(rec, rubin_reader_schema(major * 100 + minor))
            assert rec["diaSource"]["band"] in "ugrizy"
            assert rec["diaSource"]["psfFlux"] > 0


def test_unknown_rubin_version_rejected():
    with pytest.raises(ValueError, match="not available"):
        generate_packets(1, mix={"rubin": 1}, rubin_version="99.0")
    with pytest.raises(ValueError):
        generate_packets(1, mix={"rubin": 1}, rubin_version="nine")


def test_gcn_json_and_voevent():
    packets = list(generate_packets(300, seed=6, mix={"gcn": 1}))
    assert {p.true_class for p in packets} <= {"critical", "significant", "rejected"}
    kinds = Counter(p.name.rsplit(".", 1)[1] for p in packets)
    assert kinds["json"] > 50 and kinds["xml"] > 50
    missions = set()
    ivorns = set()
    for p in packets:
        assert p.name.startswith("gcn_")
        if p.name.endswith(".json"):
            n = read_gcn_json(p.payload)
            missions.add(n["mission"])
            assert n["$schema"].startswith("https://gcn.nasa.gov/schema/main/gcn/notices/")
            assert n["trigger_time"].endswith("Z")
            trig = datetime.fromisoformat(n["trigger_time"].replace("Z", "+00:00"))
            alert = datetime.fromisoformat(n["alert_datetime"].replace("Z", "+00:00"))
            assert trig <= alert <= trig + timedelta(hours=1)
            slack = timedelta(seconds=30)  # trigger seconds are nudged to keep ids unique
            assert DEFAULT_START - slack <= trig <= DEFAULT_START + timedelta(hours=1) + slack
            assert isinstance(n["id"], list) and n["id"]
            assert n["alert_type"] in ("initial", "update", "retraction")
            assert n["alert_tense"] in ("current", "test")
            real = n["alert_tense"] == "current" and n["alert_type"] != "retraction"
            if n["alert_type"] != "retraction":
                assert -90 <= n["dec"] <= 90 and 0 <= n["ra"] <= 360
            if p.true_class == "critical":
                limit = 1.5 if n["mission"] == "IceCube" else 4.0
                assert real and n["mission"] != "Einstein Probe" and n["ra_dec_error"] <= limit
            elif p.true_class == "significant":
                assert real and (n["mission"] == "Einstein Probe" or n["ra_dec_error"] >= 6.0)
                assert n["mission"] in ("Fermi", "Einstein Probe")
            else:
                assert not real
        else:
            root = ET.fromstring(p.payload)
            assert root.tag == "VOEvent"
            ivorn = root.get("ivorn")
            assert re.fullmatch(
                r"ivo://nasa\.gsfc\.gcn/Fermi#GBM_Flt_Pos_"
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d_\d{9}_\d+-\d+",
                ivorn,
            )
            ivorns.add(ivorn)
            params = voe_params(root)
            ra, dec, err, iso = voe_position(root)
            assert iso in ivorn and params["TrigID"] in ivorn
            assert 0 <= ra <= 360 and -90 <= dec <= 90 and err > 0
            noise = params["Most_Likely_Index"] == "2" or params["Def_NOT_a_GRB"] == "true"
            real = root.get("role") == "observation" and not noise
            if p.true_class == "critical":
                assert real and err <= 4.0 and params["Most_Likely_Index"] == "4"
            elif p.true_class == "significant":
                assert real and err >= 6.0
            else:
                assert not real
    assert {"Fermi", "Swift", "IceCube", "SVOM", "Einstein Probe"} <= missions
    assert len(ivorns) == kinds["xml"]


def test_gcn_fermi_json_matches_official_example_keys():
    example = json.loads(shared_file("gcn/json/fermi.gbm.trigger.flight1.example.json").read_text())
    packets = generate_packets(400, seed=8, mix={"gcn": 1})
    fermi = [read_gcn_json(p.payload) for p in packets if p.name.endswith(".json") and p.name.startswith("gcn_fermi")]
    assert fermi
    for n in fermi:
        assert n["$schema"] == example["$schema"]
        core = {"mission", "instrument", "alert_datetime", "alert_tense", "alert_type", "id"}
        assert core | {"ra", "dec", "ra_dec_error", "record_number", "trigger_time"} <= set(n)


# --------------------------------------------------------------------------------------
# the designed classes are consistent with the documented rules
# --------------------------------------------------------------------------------------


# The design rules with their margins (see the simulator's docstring); anything in a margin is
# "ambiguous". tests/test_simulator_alignment.py checks the classes against the real pipeline.
TOL = 1e-3  # magnitudes are float32 in the packets


def optical_rule(
    *, rejected: bool, mag: float, age: float, new: bool, rate: float | None, star: bool, variable: bool
) -> str:
    """`variable`: a known variable (ZTF: star-like, Rubin: any) first seen > 40 days ago."""
    if rejected:
        return "rejected"
    if mag <= 18.0 + TOL and age <= 1.0 and not star and (new or (rate is not None and rate >= 0.6 - TOL)):
        return "significant"
    if 18.8 - TOL <= mag <= 20.2 + TOL and 4.0 <= age <= 9.0 and not star:
        return "interesting"
    if (variable and age > 40.0) or mag > 20.9 - TOL:
        return "routine"
    return "ambiguous"


def latest_rate(points: list[tuple[float, float]], now: float, mag: float) -> float | None:
    earlier = [(day, m) for day, m in points if m is not None and day < now]
    if not earlier:
        return None
    day, m = max(earlier)
    return (m - mag) / (now - day)


def ztf_rule(rec: dict) -> str:
    c = rec["candidate"]
    sso = c["ssdistnr"] is not None and 0 <= c["ssdistnr"] <= 12 and c["ssnamenr"] not in (None, "null")
    passes = (
        c["rb"] >= 0.6
        and c["drb"] >= 0.7
        and c["nbad"] == 0
        and c["fwhm"] <= 3.6 + TOL
        and c["elong"] <= 1.15 + TOL
        and abs(c["magdiff"]) <= 0.08 + TOL
        and c["isdiffpos"] == "t"
        and not sso
    )
    fails = (
        c["rb"] <= 0.5 + TOL
        or c["nbad"] > 0
        or c["fwhm"] >= 5.3 - TOL
        or c["elong"] >= 1.25 - TOL
        or abs(c["magdiff"]) >= 0.12 - TOL
        or c["isdiffpos"] == "f"
        or (sso and c["ssdistnr"] <= 5.0 + TOL)
    )
    if passes == fails:
        return "ambiguous"
    same_filter = [(p["jd"], p["magpsf"]) for p in rec["prv_candidates"] if p["fid"] == c["fid"]]
    star = c["sgscore1"] >= 0.5 and 0 <= c["distpsnr1"] <= 1.5
    return optical_rule(
        rejected=fails,
        mag=c["magpsf"],
        age=c["jd"] - c["jdstarthist"],
        new=c["ndethist"] == 1 and not any(p["magpsf"] is not None for p in rec["prv_candidates"]),
        rate=latest_rate(same_filter, c["jd"], c["magpsf"]),
        star=star,
        variable=star,
    )


def rubin_mag(source: dict) -> float:
    return 31.4 - 2.5 * math.log10(source["psfFlux"])


def rubin_rule(rec: dict) -> str:
    s = rec["diaSource"]
    flagged = s["pixelFlags_bad"] or s["pixelFlags_saturatedCenter"] or s.get("isDipole")
    if not flagged and 0.5 + TOL < s["reliability"] < 0.62 - TOL:
        return "ambiguous"
    prv = rec["prvDiaSources"] or []
    now = s["midpointMjdTai"]
    same_band = [(p["midpointMjdTai"], rubin_mag(p)) for p in prv if p["band"] == s["band"]]
    return optical_rule(
        rejected=bool(flagged) or s["reliability"] <= 0.5 + TOL,
        mag=rubin_mag(s),
        age=now - min((p["midpointMjdTai"] for p in prv), default=now),
        new=not prv,
        rate=latest_rate(same_band, now, rubin_mag(s)),
        star=False,
        variable=True,
    )


def test_optical_classes_follow_the_rules(big_run):
    checked = Counter()
    for p in big_run:
        if p.true_class == "bad" or p.source == "gcn":
            continue
        rec = decode(p)
        rule = ztf_rule(rec) if p.source == "ztf" else rubin_rule(rec)
        assert rule == p.true_class, (p.name, p.true_class, rule)
        checked[(p.source, p.true_class)] += 1
    for source in ("ztf", "rubin"):
        for cls in ("significant", "interesting", "routine", "rejected"):
            assert checked[(source, cls)] > 0, (source, cls)


# --------------------------------------------------------------------------------------
# ids, mix, determinism, corruption
# --------------------------------------------------------------------------------------


def test_ids_unique_over_2000_packets(big_run):
    assert len(big_run) == 2000
    names = [p.name for p in big_run]
    assert len(set(names)) == len(names)
    candids, source_ids, object_ids = [], [], []
    for p in big_run:
        if p.source == "ztf":
            rec = decode(p)
            candids.append(rec["candid"])
            object_ids.append(rec["objectId"])
        elif p.source == "rubin":
            source_ids.append(decode(p)["diaSource"]["diaSourceId"])
    assert len(set(candids)) == len(candids) > 500
    assert len(set(source_ids)) == len(source_ids) > 400
    assert len(set(object_ids)) == len(object_ids)


def test_default_mix_respected():
    packets = list(generate_packets(2000, seed=11))
    counts = Counter(p.source for p in packets)
    assert abs(counts["ztf"] / 2000 - 0.6) < 0.04
    assert abs(counts["rubin"] / 2000 - 0.35) < 0.04
    assert abs(counts["gcn"] / 2000 - 0.05) < 0.02


def test_custom_mix_respected():
    packets = list(generate_packets(2000, seed=12, mix=parse_mix("ztf=1,gcn=1")))
    counts = Counter(p.source for p in packets)
    assert counts["rubin"] == 0
    assert abs(counts["ztf"] / 2000 - 0.5) < 0.04


def test_same_seed_same_bytes():
    kwargs = {"mix": ALL_MIX, "bad_fraction": 0.1, "rubin_wire": "both"}
    a = list(generate_packets(150, seed=42, **kwargs))
    b = list(generate_packets(150, seed=42, **kwargs))
    c = list(generate_packets(150, seed=43, **kwargs))
    assert a == b
    assert [p.payload for p in a] != [p.payload for p in c]


def test_start_time_respected():
    start = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)
    for p in generate_packets(80, seed=13, mix=ALL_MIX, start=start):
        rec = decode(p)
        if p.source == "ztf":
            t = datetime.fromtimestamp((rec["candidate"]["jd"] - 2440587.5) * 86400, UTC)
        elif p.source == "rubin":
            mjd = rec["diaSource"]["midpointMjdTai"] - 37 / 86400
            t = datetime.fromtimestamp((mjd - 40587.0) * 86400, UTC)
        elif p.name.endswith(".json"):
            t = datetime.fromisoformat(rec["trigger_time"].replace("Z", "+00:00"))
        else:
            t = datetime.fromisoformat(voe_position(rec)[3] + "+00:00")
            sent = datetime.fromisoformat(rec.find("Who/Date").text + "+00:00")
            assert sent >= t.replace(microsecond=0)
        assert start - timedelta(seconds=30) <= t <= start + timedelta(hours=1, seconds=30)


def test_bad_packets_fail_to_parse():
    packets = list(generate_packets(800, seed=21, mix=ALL_MIX, bad_fraction=0.25, rubin_wire="both"))
    bad = [p for p in packets if p.true_class == "bad"]
    assert len(bad) == 200
    assert {p.source for p in bad} == set(SOURCES)
    assert len({p.payload for p in bad}) == len(bad)  # dead letters are filed by content
    for p in packets:
        if p.true_class == "bad":
            with pytest.raises(Exception):  # noqa: B017 - any decoding error will do
                decode(p)
        else:
            decode(p)


@pytest.mark.slow
def test_bad_packets_fail_many_seeds():
    for seed in range(10):
        for p in generate_packets(200, seed=seed, mix=ALL_MIX, bad_fraction=1.0, rubin_wire="both"):
            assert p.true_class == "bad"
            with pytest.raises(Exception):  # noqa: B017
                decode(p)


def test_argument_validation():
    with pytest.raises(ValueError):
        generate_packets(-1)
    with pytest.raises(ValueError):
        generate_packets(5, bad_fraction=1.5)
    with pytest.raises(ValueError):
        generate_packets(5, rubin_wire="kafka")
    with pytest.raises(ValueError, match="unknown source"):
        generate_packets(5, mix={"atlas": 1.0})
    with pytest.raises(ValueError, match="sum to zero"):
        generate_packets(5, mix={"ztf": 0})
    assert list(generate_packets(0)) == []


# --------------------------------------------------------------------------------------
# parse_mix
# --------------------------------------------------------------------------------------


def test_parse_mix_ok():
    assert parse_mix("ztf=0.6,rubin=0.35,gcn=0.05") == pytest.approx({"ztf": 0.6, "rubin": 0.35, "gcn": 0.05})
    assert parse_mix(" ZTF = 3 , gcn=1 ") == pytest.approx({"ztf": 0.75, "rubin": 0.0, "gcn": 0.25})
    assert sum(parse_mix("rubin=7").values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("ztf", "source=weight"),
        ("ztf=", "source=weight"),
        ("=0.5", "source=weight"),
        ("ztf=abc", "bad weight"),
        ("ztf=0.5,,gcn=0.5", "empty entry"),
        ("atlas=1", "unknown source"),
        ("ztf=1,ztf=2", "twice"),
        ("ztf=-1", ">= 0"),
        ("ztf=nan", ">= 0"),
        ("ztf=0,gcn=0", "sum to zero"),
    ],
)
def test_parse_mix_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_mix(text)


# --------------------------------------------------------------------------------------
# write_packets, speed, class distribution
# --------------------------------------------------------------------------------------


def test_write_packets(tmp_path):
    packets = list(generate_packets(25, seed=31, mix=ALL_MIX, rubin_wire="both"))
    assert write_packets(packets, tmp_path / "out") == 25
    for p in packets:
        assert (tmp_path / "out" / p.name).read_bytes() == p.payload
    with pytest.raises(ValueError):
        write_packets([SimulatedPacket("ztf", b"x", "../evil.avro", "bad")], tmp_path)


def test_class_distribution_default_mix():
    counts = Counter(p.true_class for p in generate_packets(2000, seed=3, bad_fraction=0.02))
    assert set(counts) <= set(CLASSES)
    assert counts["bad"] == 40
    assert counts["routine"] > counts["rejected"] > counts["interesting"] > 0
    assert counts["significant"] > 0


def test_same_seed_same_bytes_in_another_process():
    """Set iteration order and fastavro's schema JSON change with Python's hash seed; the packets must not."""
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from devtools.simulator import generate_packets; "
        "print(hashlib.sha256(b''.join(p.payload for p in generate_packets(400, seed=1, bad_fraction=0.05, "
        "rubin_wire='both', mix={'ztf': 0.4, 'rubin': 0.4, 'gcn': 0.2}))).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1
