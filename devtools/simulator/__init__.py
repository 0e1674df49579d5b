"""Realistic packet simulator for Nightwatch.

Produces packets in the real public wire formats, driven by a seed so the output is
deterministic:

* ZTF: Avro object container file holding one ``ztf.alert`` v4.02 record (schema from
  ``devtools/simulator/schemas/ztf``), with prv_candidates, fp_hists and small gzip'd FITS cutouts.
* Rubin/LSST: ``lsst.vX_Y.alert`` records (schema from the installed ``lsst-alert-packet``
  package, default v9.0, any available version >= 7.0) either as an Avro container file or
  in the Confluent wire format (0x00, 4-byte big-endian schema id = major*100+minor,
  schemaless Avro).
* NASA GCN: unified JSON notices (Fermi GBM, Swift BAT-GUANO, Einstein Probe WXT, IceCube,
  SVOM ECLAIRs) and classic Fermi GBM position VOEvents (XML).

Each packet carries the class it was *designed* to land in (``true_class``): the class the
pipeline gives it under ``config/filters.yaml`` and ``config/classification.yaml``, with every
value kept well clear of the thresholds there. The design rules:

ZTF (optical; days since first = jd - jdstarthist, star-like = sgscore1 >= 0.5 and distpsnr1 <= 1.5):
  rejected     a quality cut fails: rb <= 0.5 (drb low too), nbad > 0, fwhm > 5.3, elong > 1.25,
               |magdiff| > 0.12, isdiffpos 'f', or a known solar-system object (ssdistnr 0..5
               arcsec, ssnamenr set). Passing packets have rb >= 0.6, drb >= 0.7, nbad 0,
               fwhm <= 3.6, elong <= 1.15, |magdiff| <= 0.08, isdiffpos 't', ssdistnr = ssmagnr
               = -999 and ssnamenr 'null' (as ZTF writes it).
  significant  passes, magpsf <= 18.0, not star-like, and either a first detection (ndethist 1,
               no earlier detections) or rising: first seen 0.2..1 day ago, earlier detections
               all in the candidate's filter and 0.6..1.5 mag fainter (>= 0.6 mag/day).
  interesting  passes, magpsf 18.8..20.2, first seen 4..9 days ago, not star-like.
  routine      passes, and a star-like variable first seen > 40 days ago, or magpsf > 20.9.
Rubin (optical, psfFlux in nJy, mag = 31.4 - 2.5 log10(psfFlux); history from prvDiaSources,
never star-like):
  rejected     reliability <= 0.5, pixelFlags_bad, pixelFlags_saturatedCenter or isDipole
               (isDipole only where the schema has it, i.e. >= v8). Passing packets have
               reliability >= 0.62, positive flux and every flag False.
  significant  mag <= 18.0, and no prvDiaSources or rising (as ZTF, in the same band).
  interesting  mag 18.8..20.2, a few prvDiaSources, the first 4..9 days ago.
  routine      mag > 20.9, or prvDiaSources going back > 40 days.
GCN (kind from the mission/instrument, config/sources.yaml gcn_kinds):
  critical     real GRB notice (Fermi GBM JSON/VOEvent, Swift BAT-GUANO, SVOM ECLAIRs) with
               ra_dec_error (Error2Radius) <= 4 deg, or IceCube neutrino with error <= 1.5 deg.
  significant  real Fermi GBM GRB position with error 6..25 deg, or an Einstein Probe WXT
               X-ray transient.
  rejected     retraction (alert_type 'retraction'), test (alert_tense 'test' or
               role="test"), or Fermi VOEvent local-particle noise (Most_Likely_Index 2,
               Def_NOT_a_GRB true).
bad: packets the pipeline cannot decode (dead letters): truncated / flipped Avro, invalid JSON,
JSON with no time field at all, cut-off XML, or an impossible declination (95 deg).

The product never reads anything outside this package and the installed lsst-alert-packet.
"""

from __future__ import annotations

import copy
import functools
import gzip
import importlib.util
import io
import json
import math
import random
import string
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro

UTC = timezone.utc

__all__ = [
    "CLASSES",
    "DEFAULT_MIX",
    "DEFAULT_RUBIN_VERSION",
    "DEFAULT_START",
    "SOURCES",
    "SimulatedPacket",
    "available_rubin_versions",
    "generate_packets",
    "parse_mix",
    "rubin_schema",
    "rubin_schema_id",
    "write_packets",
    "ztf_schema",
]

SOURCES = ("ztf", "rubin", "gcn")
CLASSES = ("critical", "significant", "interesting", "routine", "rejected", "bad")
RUBIN_WIRES = ("container", "confluent", "both")
DEFAULT_MIX: dict[str, float] = {"ztf": 0.6, "rubin": 0.35, "gcn": 0.05}
DEFAULT_START = datetime(2025, 9, 6, 2, 0, tzinfo=UTC)
DEFAULT_RUBIN_VERSION = "9.0"
MIN_RUBIN_MAJOR = 7
WINDOW_SECONDS = 3600.0

ZTF_SCHEMA_DIR = Path(__file__).parent / "schemas" / "ztf"
ZTF_SCHEMA_VERSION = "4.02"

# Class design weights per source (the "bad" share is set by bad_fraction on top).
ZTF_CLASS_WEIGHTS: dict[str, float] = {
    "significant": 0.03,
    "interesting": 0.07,
    "routine": 0.72,
    "rejected": 0.18,
}
RUBIN_CLASS_WEIGHTS: dict[str, float] = {
    "significant": 0.03,
    "interesting": 0.08,
    "routine": 0.69,
    "rejected": 0.20,
}
GCN_CLASS_WEIGHTS: dict[str, float] = {"critical": 0.05, "significant": 0.62, "rejected": 0.33}

_UNIX_EPOCH_JD = 2440587.5
_UNIX_EPOCH_MJD = 40587.0
_TAI_MINUS_UTC_S = 37.0
_MISSION_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)  # Fermi / Swift MET epoch
_LEAP_SECONDS_SINCE_2001 = 5
_ZTF_NID_EPOCH = date(2017, 1, 1)
_NJY_ZEROPOINT = 31.4


# --------------------------------------------------------------------------------------
# public dataclass and small API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedPacket:
    """One simulated packet: its bytes in the real wire format plus the designed class."""

    source: str
    payload: bytes
    name: str
    true_class: str
    event_time: datetime | None = None  # when the event happened (what a publisher puts in `event_time`)


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``'ztf=0.6,rubin=0.35,gcn=0.05'`` into a normalised {source: fraction} dict.

    Sources not named get 0. Raises ValueError on malformed text, unknown or repeated
    sources, negative / non-finite weights, or weights summing to zero.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("mix is empty; expected e.g. 'ztf=0.6,rubin=0.35,gcn=0.05'")
    raw: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty entry in mix {text!r}")
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise ValueError(f"bad mix entry {part!r}: expected source=weight")
        if key not in SOURCES:
            raise ValueError(f"unknown source {key!r} in mix; known sources: {', '.join(SOURCES)}")
        if key in raw:
            raise ValueError(f"source {key!r} given twice in mix")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"bad weight {value.strip()!r} for source {key!r}") from None
        raw[key] = weight
    return _normalise_mix(raw)


def _normalise_mix(mix: dict[str, float]) -> dict[str, float]:
    for key, weight in mix.items():
        if key not in SOURCES:
            raise ValueError(f"unknown source {key!r} in mix; known sources: {', '.join(SOURCES)}")
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight for {key!r} must be a finite number >= 0, got {weight!r}")
    total = float(sum(mix.values()))
    if total <= 0:
        raise ValueError("mix weights sum to zero")
    return {src: float(mix.get(src, 0.0)) / total for src in SOURCES}


def write_packets(packets: Iterable[SimulatedPacket], out_dir: Path) -> int:
    """Write each packet to ``out_dir/<packet.name>``; return how many were written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for packet in packets:
        name = packet.name
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"unsafe packet file name {name!r}")
        (out / name).write_bytes(packet.payload)
        written += 1
    return written


# --------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _fullname(schema: dict[str, Any], namespace: str | None) -> str:
    name = schema["name"]
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _inline(schema: Any, defs: dict[str, dict], seen: set[str], namespace: str | None) -> Any:
    """Return ``schema`` with named-type references inlined at their first use."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
        if full not in defs and schema in defs:
            full = schema
        if full in seen:
            return full
        if full not in defs:
            raise ValueError(f"unknown Avro named type {schema!r}")
        definition = copy.deepcopy(defs[full])
        ns, _, short = full.rpartition(".")
        definition["name"] = short
        if ns:
            definition["namespace"] = ns
        return _inline(definition, defs, seen, namespace)
    if isinstance(schema, list):
        return [_inline(branch, defs, seen, namespace) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        full = _fullname(schema, namespace)
        seen.add(full)
        if kind in ("record", "error"):
            inner_ns = full.rpartition(".")[0] or None
            out = dict(schema)
            out["fields"] = [{**f, "type": _inline(f["type"], defs, seen, inner_ns)} for f in schema["fields"]]
            return out
        return dict(schema)
    if kind == "array":
        return {**schema, "items": _inline(schema["items"], defs, seen, namespace)}
    if kind == "map":
        return {**schema, "values": _inline(schema["values"], defs, seen, namespace)}
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
        return {**schema, "type": _inline(kind, defs, seen, namespace)}
    return schema


def _load_schema_dir(folder: Path, top: str) -> dict[str, Any]:
    """Parse every .avsc in ``folder`` and return the self-contained parsed ``top`` schema."""
    defs: dict[str, dict] = {}
    for path in sorted(folder.glob("*.avsc")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and "name" in raw:
            defs[_fullname(raw, None)] = raw
    if top not in defs:
        raise FileNotFoundError(f"schema {top!r} not found in {folder}")
    expanded = _inline(top, defs, set(), None)
    return fastavro.parse_schema(expanded)


@functools.cache
def ztf_schema() -> dict[str, Any]:
    """The parsed, self-contained ``ztf.alert`` v4.02 schema."""
    return _load_schema_dir(ZTF_SCHEMA_DIR, "ztf.alert")


def _rubin_schema_root() -> Path:
    spec = importlib.util.find_spec("lsst.alert.packet")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("lsst-alert-packet is not installed; Rubin packets need its schemas")
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


def _parse_version(version: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(version, tuple):
        major, minor = version
        return int(major), int(minor)
    text = str(version).strip().lower().removeprefix("v").replace("_", ".")
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad Rubin schema version {version!r}; expected 'major.minor'")
    return int(parts[0]), int(parts[1])


@functools.cache
def available_rubin_versions() -> tuple[str, ...]:
    """Rubin alert schema versions (>= 7.0) shipped by the installed lsst-alert-packet."""
    root = _rubin_schema_root()
    found: list[tuple[int, int]] = []
    for major_dir in root.iterdir():
        if not (major_dir.is_dir() and major_dir.name.isdigit()):
            continue
        for minor_dir in major_dir.iterdir():
            if not (minor_dir.is_dir() and minor_dir.name.isdigit()):
                continue
            major, minor = int(major_dir.name), int(minor_dir.name)
            alert = minor_dir / f"lsst.v{major}_{minor}.alert.avsc"
            if major >= MIN_RUBIN_MAJOR and alert.exists():
                found.append((major, minor))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def rubin_schema_id(version: str | tuple[int, int] = DEFAULT_RUBIN_VERSION) -> int:
    """Rubin's Confluent schema id: major*100 + minor (9.0 -> 900, 11.1 -> 1101)."""
    major, minor = _parse_version(version)
    return major * 100 + minor


@functools.cache
def _rubin_schema_cached(major: int, minor: int) -> dict[str, Any]:
    folder = _rubin_schema_root() / str(major) / str(minor)
    return _load_schema_dir(folder, f"lsst.v{major}_{minor}.alert")


def rubin_schema(version: str | tuple[int, int] = DEFAULT_RUBIN_VERSION) -> dict[str, Any]:
    """The parsed, self-contained ``lsst.vX_Y.alert`` schema for ``version``."""
    major, minor = _parse_version(version)
    label = f"{major}.{minor}"
    if label not in available_rubin_versions():
        raise ValueError(
            f"Rubin schema version {label} not available; available: {', '.join(available_rubin_versions())}"
        )
    return _rubin_schema_cached(major, minor)


# --------------------------------------------------------------------------------------
# generic filler: records with type-correct defaults for every field
# --------------------------------------------------------------------------------------


class _Blank:
    """Makes records of a parsed schema filled with defaults of the right Avro type."""

    def __init__(self, parsed: dict[str, Any]) -> None:
        self.named: dict[str, Any] = parsed["__named_schemas"]
        self._templates: dict[tuple[str, bool], tuple[dict[str, Any], list, list]] = {}

    def _resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema in self.named:
            return self.named[schema]
        return schema

    def _value(self, schema: Any) -> tuple[Any, str | None]:
        """(default value, name of a nested record to build fresh or None)."""
        schema = self._resolve(schema)
        if isinstance(schema, list):
            if "null" in schema:
                return None, None
            return self._value(schema[0])
        if isinstance(schema, str):
            return {
                "null": None,
                "boolean": False,
                "int": 0,
                "long": 0,
                "float": 0.0,
                "double": 0.0,
                "bytes": b"",
                "string": "",
            }[schema], None
        kind = schema.get("type")
        if kind in ("record", "error"):
            return None, schema["name"]
        if kind == "enum":
            return schema["symbols"][0], None
        if kind == "fixed":
            return bytes(schema["size"]), None
        if kind == "array":
            return [], None
        if kind == "map":
            return {}, None
        return self._value(kind)

    def _template(self, name: str, false_bools: bool):
        key = (name, false_bools)
        cached = self._templates.get(key)
        if cached is not None:
            return cached
        record = self.named[name]
        values: dict[str, Any] = {}
        nested: list[tuple[str, str]] = []
        for fld in record["fields"]:
            ftype = fld["type"]
            if "default" in fld and not (isinstance(fld["default"], (list, dict))):
                values[fld["name"]] = fld["default"]
            else:
                value, sub = self._value(ftype)
                if sub is not None:
                    nested.append((fld["name"], sub))
                values[fld["name"]] = value
            if false_bools and isinstance(ftype, list) and "boolean" in ftype and values[fld["name"]] is None:
                values[fld["name"]] = False
        mutable = [(k, type(v)) for k, v in values.items() if isinstance(v, (list, dict))]
        self._templates[key] = (values, nested, mutable)
        return self._templates[key]

    def has_field(self, name: str, field_name: str) -> bool:
        return field_name in self._template(name, False)[0]

    def new(self, name: str, *, false_bools: bool = False) -> dict[str, Any]:
        values, nested, mutable = self._template(name, false_bools)
        rec = dict(values)
        for key, kind in mutable:
            rec[key] = kind()
        for key, sub in nested:
            rec[key] = self.new(sub, false_bools=false_bools)
        return rec


def _put(rec: dict[str, Any], **values: Any) -> None:
    """Set the values whose field exists in this record's schema (version tolerant)."""
    for key, value in values.items():
        if key in rec:
            rec[key] = value


@functools.cache
def _ztf_blank() -> _Blank:
    return _Blank(ztf_schema())


@functools.cache
def _rubin_blank(major: int, minor: int) -> _Blank:
    return _Blank(_rubin_schema_cached(major, minor))


# --------------------------------------------------------------------------------------
# helpers: time, coordinates, draws, cutouts
# --------------------------------------------------------------------------------------


def _jd(t: datetime) -> float:
    return t.timestamp() / 86400.0 + _UNIX_EPOCH_JD


def _mjd_tai(t: datetime) -> float:
    return (t.timestamp() + _TAI_MINUS_UTC_S) / 86400.0 + _UNIX_EPOCH_MJD


def _from_jd(jd: float) -> datetime:
    return datetime.fromtimestamp((jd - _UNIX_EPOCH_JD) * 86400.0, UTC)


def _iso(t: datetime, decimals: int = 2, z: bool = True) -> str:
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        frac = f"{t.microsecond / 1e6:.{decimals}f}"
        if frac.startswith("1"):  # rounding overflow, keep it simple
            frac = "0." + "9" * decimals
        text += frac[1:]
    return text + ("Z" if z else "")


def _met(t: datetime) -> float:
    return (t - _MISSION_EPOCH).total_seconds() + _LEAP_SECONDS_SINCE_2001


def _draw(rng: random.Random, weights: dict[str, float]) -> str:
    x = rng.random() * sum(weights.values())
    last = ""
    for key, weight in weights.items():
        if weight <= 0:
            continue
        last = key
        if x < weight:
            return key
        x -= weight
    return last


def _sky(rng: random.Random, dec_min: float, dec_max: float) -> tuple[float, float]:
    """Uniform on the sphere between two declinations."""
    lo, hi = math.sin(math.radians(dec_min)), math.sin(math.radians(dec_max))
    return rng.uniform(0.0, 360.0), math.degrees(math.asin(rng.uniform(lo, hi)))


_GAL = (
    (-0.0548755604, -0.8734370902, -0.4838350155),
    (0.4941094279, -0.4448296300, 0.7469822445),
    (-0.8676661490, -0.1980763734, 0.4559837762),
)


def _galactic(ra: float, dec: float) -> tuple[float, float]:
    a, d = math.radians(ra), math.radians(dec)
    v = (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))
    g = [sum(r[i] * v[i] for i in range(3)) for r in _GAL]
    lon = math.degrees(math.atan2(g[1], g[0])) % 360.0
    lat = math.degrees(math.asin(max(-1.0, min(1.0, g[2]))))
    return lon, lat


def _card(key: str, value: Any) -> bytes:
    if isinstance(value, bool):
        text = "T" if value else "F"
    else:
        text = str(value)
    return f"{key:<8}= {text:>20}".ljust(80).encode("ascii")


_STAMP = 8
_FITS_HEADER = b"".join(
    [
        _card("SIMPLE", True),
        _card("BITPIX", -32),
        _card("NAXIS", 2),
        _card("NAXIS1", _STAMP),
        _card("NAXIS2", _STAMP),
        b"END".ljust(80),
    ]
).ljust(2880, b" ")
_PSF = [math.exp(-(((i % _STAMP) - 3.5) ** 2 + ((i // _STAMP) - 3.5) ** 2) / 3.0) for i in range(_STAMP * _STAMP)]


_NOISE_RNG = random.Random(20250906)
_NOISE = [[_NOISE_RNG.gauss(0.0, 1.0) for _ in _PSF] for _ in range(64)]
_PIX_FORMAT = struct.Struct(f">{len(_PSF)}f")


def _fits_stamp(rng: random.Random, peak: float, sky: float = 0.0) -> bytes:
    """A tiny but valid 8x8 float32 FITS image: noise plus a Gaussian of height ``peak``."""
    noise = _NOISE[rng.randrange(len(_NOISE))]
    scale = rng.uniform(0.5, 3.0)
    pixels = [sky + peak * w + scale * n for w, n in zip(_PSF, noise, strict=True)]
    return _FITS_HEADER + _PIX_FORMAT.pack(*pixels).ljust(2880, b"\0")


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


_CONTAINER_HEADERS: dict[int, tuple[dict[str, Any], bytes]] = {}


def _container_header(schema: dict[str, Any]) -> bytes:
    """An Avro container file header for ``schema`` without its trailing sync marker.

    fastavro writes the schema JSON with its keys in an order that changes from one Python process to
    the next (hash randomisation), which would make the same seed give different bytes in another
    process; the header is rebuilt here with the schema's keys sorted.
    """
    cached = _CONTAINER_HEADERS.get(id(schema))
    if cached is None or cached[0] is not schema:
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [], sync_marker=bytes(16))
        buf.seek(0)
        meta = dict(fastavro.reader(buf).metadata)
        meta["avro.schema"] = json.dumps(json.loads(meta["avro.schema"]), sort_keys=True)
        parts = [b"Obj\x01", _zigzag(len(meta))]
        for key, value in sorted(meta.items()):
            for text in (key.encode(), value.encode()):
                parts += [_zigzag(len(text)), text]
        parts.append(_zigzag(0))
        cached = (schema, b"".join(parts))
        _CONTAINER_HEADERS[id(schema)] = cached
    return cached[1]


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_container(schema: dict[str, Any], record: dict[str, Any], rng: random.Random) -> bytes:
    """An Avro object container file with one record: byte-identical to what
    ``fastavro.writer(fo, schema, [record], sync_marker=sync)`` writes, but with the header
    (which embeds the whole schema as JSON) built once per schema."""
    sync = rng.randbytes(16)
    data = _schemaless(schema, record)
    return b"".join((_container_header(schema), sync, _zigzag(1), _zigzag(len(data)), data, sync))


def _schemaless(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# generator state
# --------------------------------------------------------------------------------------


@dataclass
class _State:
    rng: random.Random
    rubin_major: int
    rubin_minor: int
    used: set[Any] = field(default_factory=set)
    serial: int = 0
    rubin_count: int = 0

    def unique(self, value: Any, bump: Any = 1) -> Any:
        """Return ``value`` or the next free one (``value + bump`` ...)."""
        while value in self.used:
            value = value + bump
        self.used.add(value)
        return value

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial


# --------------------------------------------------------------------------------------
# ZTF
# --------------------------------------------------------------------------------------

_ZTF_FILTERS = {1: "zg", 2: "zr", 3: "zi"}
_ZTF_FILTER_WEIGHTS = {"1": 0.45, "2": 0.5, "3": 0.05}
_ZTF_REJECT_REASONS = {
    "rb": 0.3,
    "nbad": 0.12,
    "fwhm": 0.1,
    "elong": 0.12,
    "magdiff": 0.12,
    "negative": 0.14,
    "sso": 0.1,
}


def _ztf_design(rng: random.Random, cls: str) -> dict[str, Any]:
    """Cut values and light-curve design: mag, ndet (ndethist), age (days since the first
    detection), rising (earlier detections all in the candidate's filter, fainter) and star."""
    u = rng.uniform
    d: dict[str, Any] = {
        "rb": u(0.6, 0.97),
        "drb": u(0.7, 1.0),
        "nbad": 0,
        "fwhm": u(1.6, 3.6),
        "elong": u(1.0, 1.15),
        "magdiff": u(-0.08, 0.08),
        "isdiffpos": "t",
        "sso": None,
        "star": False,
        "rising": False,
    }
    if cls == "significant":
        d.update(_new_or_rising(rng), mag=u(14.5, 18.0), rb=u(0.8, 0.99), drb=u(0.95, 1.0))
    elif cls == "interesting":
        d.update(mag=u(18.8, 20.2), ndet=rng.randint(2, 10), age=u(4.0, 9.0))
    elif cls in ("routine", "rejected"):
        d.update(_routine_optical(rng, faintest=21.4, max_ndet=1500, max_age=2500.0))
        if cls == "rejected":
            if rng.random() < 0.25:  # a bright new candidate that fails the cuts
                d.update(_new_or_rising(rng), mag=u(15.0, 18.0), star=False)
            reasons = {_draw(rng, _ZTF_REJECT_REASONS)}
            if rng.random() < 0.2:
                reasons.add(_draw(rng, _ZTF_REJECT_REASONS))
            for reason in sorted(reasons):  # a set of strings iterates in a per-process order
                if reason == "rb":
                    d.update(rb=u(0.03, 0.5), drb=u(0.0, 0.4))
                elif reason == "nbad":
                    d["nbad"] = rng.randint(1, 6)
                elif reason == "fwhm":
                    d["fwhm"] = u(5.3, 9.5)
                elif reason == "elong":
                    d["elong"] = u(1.25, 2.4)
                elif reason == "magdiff":
                    d["magdiff"] = rng.choice((-1, 1)) * u(0.12, 0.6)
                elif reason == "negative":
                    d["isdiffpos"] = "f"
                elif reason == "sso":
                    number = rng.randint(1000, 650000)
                    name = str(number) if rng.random() < 0.7 else _provisional(rng)
                    d.update(sso=(u(0.0, 5.0), name), ndet=1, age=0.0, star=False, mag=u(17.0, 20.8))
            d["reasons"] = sorted(reasons)
    else:
        raise ValueError(f"no ZTF design for class {cls!r}")
    return d


def _new_or_rising(rng: random.Random) -> dict[str, Any]:
    """A first detection, or a young (< 1 day) one whose earlier detections are all >= 0.6 mag
    fainter in the same band: rising by >= 0.6 mag/day."""
    if rng.random() < 0.5:
        return {"ndet": 1, "age": 0.0, "rising": False}
    return {"ndet": rng.randint(2, 3), "age": rng.uniform(0.2, 1.0), "rising": True}


def _routine_optical(rng: random.Random, faintest: float, max_ndet: int, max_age: float) -> dict[str, Any]:
    """A known variable (star-like, first seen > 40 days ago) or a source fainter than mag 20.9."""
    u = rng.uniform
    if rng.random() < 0.7:
        ndet = int(math.exp(u(math.log(11), math.log(max_ndet))))
        return {"mag": u(15.5, 20.9), "ndet": max(ndet, 11), "age": u(40.0, max_age), "star": True}
    ndet = rng.randint(1, 10)
    return {"mag": u(20.9, faintest), "ndet": ndet, "age": 0.0 if ndet == 1 else u(0.5, 25.0), "star": False}


def _provisional(rng: random.Random) -> str:
    year = rng.randint(1995, 2024)
    letters = rng.choice(string.ascii_uppercase) + rng.choice(string.ascii_uppercase)
    return f"{year}{letters}{rng.randint(1, 199)}"


def _ztf_object_id(rng: random.Random, year: int) -> str:
    return f"ZTF{year % 100:02d}" + "".join(rng.choices(string.ascii_lowercase, k=7))


def _ztf_exposure(rng: random.Random, jd: float, fid: int, field_id: int, rcid: int) -> dict:
    t = _from_jd(jd)
    frac = (jd - 0.5) % 1.0
    nid = (t.date() - _ZTF_NID_EPOCH).days
    pid = int(f"{nid}{int(frac * 1e5):05d}{rcid:02d}15")
    magzp = rng.uniform(25.8, 26.4)
    return {
        "jd": jd,
        "fid": fid,
        "pid": pid,
        "nid": nid,
        "rcid": rcid,
        "field": field_id,
        "programid": 1,
        "programpi": "Kulkarni",
        "diffmaglim": rng.uniform(19.8, 20.9),
        "pdiffimfilename": (
            f"ztf_{t:%Y%m%d}{int(frac * 1e6):06d}_{field_id:06d}_{_ZTF_FILTERS[fid]}"
            f"_c{rcid // 4 + 1:02d}_o_q{rcid % 4 + 1}_scimrefdiffimg.fits"
        ),
        "magzpsci": magzp,
        "magzpsciunc": rng.uniform(1e-6, 2e-5),
        "magzpscirms": rng.uniform(0.01, 0.05),
        "clrcoeff": rng.uniform(-0.1, 0.15),
        "clrcounc": rng.uniform(1e-6, 3e-5),
        "rbversion": "t17_f5_c3",
    }


def _ztf_detection(rng: random.Random, rec: dict, exp: dict, obj: dict, q: dict) -> None:
    """Fill the photometry / quality fields of a candidate or prv_candidate detection."""
    u = rng.uniform
    mag = q["mag"]
    lim = exp["diffmaglim"]
    if mag > lim - 0.1:
        lim = mag + u(0.1, 0.6)
    sig = max(0.01, 1.0857 / (5.0 * 10 ** (0.4 * (lim - mag))) * u(0.9, 1.15))
    bimage = u(0.5, 1.2)
    aimage = bimage * q["elong"]
    x, y = u(5.0, 3067.0), u(5.0, 3075.0)
    ss = q.get("sso")
    values = dict(exp)
    values.update(
        diffmaglim=lim,
        isdiffpos=q["isdiffpos"],
        tblid=rng.randint(0, 120),
        xpos=x,
        ypos=y,
        ra=obj["ra"] + rng.gauss(0.0, 0.06 / 3600),
        dec=obj["dec"] + rng.gauss(0.0, 0.06 / 3600),
        magpsf=mag,
        sigmapsf=sig,
        chipsf=u(0.5, 6.0),
        magap=mag + q["magdiff"],
        sigmagap=sig * u(0.7, 1.2),
        distnr=obj["distnr"],
        magnr=obj["magnr"],
        sigmagnr=obj["sigmagnr"],
        chinr=obj["chinr"],
        sharpnr=obj["sharpnr"],
        sky=u(-1.5, 2.5),
        magdiff=q["magdiff"],
        fwhm=q["fwhm"],
        classtar=u(0.9, 1.0) if obj["star"] else u(0.02, 0.9),
        mindtoedge=min(x, y, 3072.0 - x, 3080.0 - y),
        magfromlim=lim - mag,
        seeratio=u(0.8, 2.0),
        aimage=aimage,
        bimage=bimage,
        aimagerat=aimage / q["fwhm"],
        bimagerat=bimage / q["fwhm"],
        elong=q["elong"],
        nneg=rng.randint(0, 8),
        nbad=q["nbad"],
        rb=q["rb"],
        drb=q["drb"],
        ssdistnr=ss[0] if ss else -999.0,
        ssmagnr=mag + u(-0.3, 0.3) if ss else -999.0,
        ssnamenr=ss[1] if ss else "null",
        sumrat=u(0.85, 1.0),
        magapbig=mag + q["magdiff"] + u(-0.03, 0.03),
        sigmagapbig=sig * u(0.8, 1.3),
        ranr=obj["ranr"],
        decnr=obj["decnr"],
        scorr=1.0857 / sig * u(0.9, 1.3),
    )
    _put(rec, **values)


def _ztf_object(rng: random.Random, d: dict, jd: float) -> dict:
    u = rng.uniform
    dec_lo = math.sin(math.radians(-30.0))
    ra = u(0.0, 360.0)
    dec = math.degrees(math.asin(u(dec_lo, 1.0)))
    obj: dict[str, Any] = {"ra": ra, "dec": dec, "star": d["star"], "jdstarthist": jd - d["age"]}
    if d["star"]:  # the variable star itself sits in the reference image and PS1
        dist = u(0.05, 0.8)
        obj.update(distnr=dist, magnr=u(13.0, 19.5), sgscore1=u(0.85, 1.0), distpsnr1=dist * 0.9)
    elif rng.random() < 0.8:  # transient with a host galaxy
        dist = u(0.8, 8.0)
        obj.update(distnr=dist, magnr=u(17.0, 21.5), sgscore1=u(0.0, 0.3), distpsnr1=dist)
    else:  # hostless
        obj.update(distnr=-999.0, magnr=-999.0, sgscore1=-999.0, distpsnr1=-999.0)
    hosted = obj["distnr"] >= 0
    obj.update(
        sigmagnr=u(0.01, 0.08) if hosted else -999.0,
        chinr=u(0.3, 3.0) if hosted else -999.0,
        sharpnr=u(-0.05, 0.3) if hosted else -999.0,
        ranr=ra + (u(-1, 1) * obj["distnr"] / 3600 if hosted else 0.0),
        decnr=dec + (u(-1, 1) * obj["distnr"] / 3600 if hosted else 0.0),
    )
    return obj


def _ztf_record(st: _State, cls: str, t: datetime) -> dict[str, Any]:
    rng = st.rng
    u = rng.uniform
    blank = _ztf_blank()
    d = _ztf_design(rng, cls)
    jd = _jd(t)
    fid = int(_draw(rng, _ZTF_FILTER_WEIGHTS))
    field_id = rng.randint(245, 1895)
    rcid = rng.randint(0, 63)
    exp = _ztf_exposure(rng, jd, fid, field_id, rcid)
    obj = _ztf_object(rng, d, jd)

    candidate = blank.new("ztf.alert.candidate")
    _ztf_detection(rng, candidate, exp, obj, d)
    candid = st.unique(exp["pid"] * 1_000_000 + 10_000 + rng.randint(0, 9999))
    ndet = d["ndet"]
    hosted_ps1 = obj["distpsnr1"] >= 0
    ps1 = {}
    for k in (1, 2, 3):
        has = hosted_ps1 or k > 1
        base = obj["magnr"] if (k == 1 and hosted_ps1) else u(19.0, 22.5)
        ps1.update(
            {
                f"objectidps{k}": rng.randint(10**16, 2 * 10**17) if has else -999,
                f"sgmag{k}": base + u(0.0, 0.6) if has else -999.0,
                f"srmag{k}": base + u(-0.2, 0.2) if has else -999.0,
                f"simag{k}": base + u(-0.5, 0.1) if has else -999.0,
                f"szmag{k}": base + u(-0.6, 0.1) if has else -999.0,
                f"sgscore{k}": (obj["sgscore1"] if k == 1 else u(0.0, 1.0)) if has else -999.0,
                f"distpsnr{k}": (obj["distpsnr1"] if k == 1 else u(5.0, 30.0)) if has else -999.0,
            }
        )
    neargaia = u(0.05, 1.0) if obj["star"] else u(2.0, 60.0)
    maggaia = obj["magnr"] + u(-0.3, 0.3) if obj["star"] else u(12.0, 20.5)
    jdstartref = u(2458150.0, 2458450.0)
    _put(
        candidate,
        candid=candid,
        ndethist=ndet,
        ncovhist=ndet + int(ndet * u(0.2, 3.0)) + rng.randint(0, 40),
        jdstarthist=obj["jdstarthist"],
        jdendhist=jd,
        tooflag=0,
        nmtchps=rng.randint(5, 40),
        rfid=field_id * 1_000_000 + 120_000 + fid * 100 + rcid,
        jdstartref=jdstartref,
        jdendref=jdstartref + u(30.0, 300.0),
        nframesref=rng.randint(15, 40),
        dsnrms=u(20.0, 200.0),
        ssnrms=u(50.0, 400.0),
        dsdiff=u(-200.0, 50.0),
        nmatches=rng.randint(500, 3000),
        zpclrcov=u(-5e-6, 0.0),
        zpmed=exp["magzpsci"] + u(-0.05, 0.05),
        clrmed=u(0.4, 0.8),
        clrrms=u(0.1, 0.3),
        neargaia=neargaia,
        neargaiabright=neargaia if maggaia < 14 else u(5.0, 120.0),
        maggaia=maggaia,
        maggaiabright=maggaia if maggaia < 14 else u(10.0, 14.0),
        exptime=30.0,
        drbversion="d6_m7",
        **ps1,
    )

    # history: earlier detections (older first, the first at jdstarthist) and upper limits;
    # a rising design has its earlier detections in the candidate's filter, all fainter
    prv: list[dict[str, Any]] = []
    n_det_prv = min(ndet - 1, 4)
    span = jd - obj["jdstarthist"]
    det_jds = sorted(jd - u(0.01, 1.0) * span for _ in range(n_det_prv))
    if n_det_prv:
        det_jds[0] = obj["jdstarthist"]
    first = det_jds[0] if det_jds else jd
    lim_jds = sorted(first - u(0.5, 12.0) for _ in range(rng.randint(0 if ndet > 2 else 1, 3)))
    history = [(pjd, False) for pjd in lim_jds] + [(pjd, True) for pjd in det_jds]
    for pjd, detected in history:
        pfid = fid if detected and d["rising"] else rng.choice((1, 2))
        pexp = _ztf_exposure(rng, pjd, pfid, field_id, rcid)
        rec = blank.new("ztf.alert.prv_candidate")
        if detected:
            q = {
                **d,
                "mag": d["mag"] + (u(0.6, 1.5) if d["rising"] else u(-0.4, 0.6)),
                "rb": u(0.6, 0.97),
                "drb": u(0.7, 1.0),
                "nbad": 0,
                "fwhm": u(1.6, 3.6),
                "elong": u(1.0, 1.15),
                "magdiff": u(-0.08, 0.08),
                "isdiffpos": "t",
                "sso": None,
            }
            _ztf_detection(rng, rec, pexp, obj, q)
            rec["candid"] = pexp["pid"] * 1_000_000 + 10_000 + rng.randint(0, 9999)
        else:
            _put(rec, **pexp)
            rec["diffmaglim"] = max(pexp["diffmaglim"], d["mag"] + u(0.2, 1.0))
        prv.append(rec)

    fp_hists = []
    for _ in range(rng.randint(0, 3)):
        pjd = jd - u(1.0, 30.0)
        pfid = rng.choice((1, 2))
        pexp = _ztf_exposure(rng, pjd, pfid, field_id, rcid)
        rec = blank.new("ztf.alert.fp_hist")
        _put(
            rec,
            **{k: v for k, v in pexp.items() if k in rec},
            rfid=field_id * 1_000_000 + 120_000 + pfid * 100 + rcid,
            sciinpseeing=u(1.5, 3.5),
            scibckgnd=u(80.0, 250.0),
            scisigpix=u(6.0, 15.0),
            exptime=30.0,
            adpctdif1=u(0.0, 0.2),
            adpctdif2=u(0.0, 0.2),
            forcediffimflux=rng.gauss(0.0, 60.0),
            forcediffimfluxunc=u(20.0, 80.0),
            procstatus="0",
            distnr=obj["distnr"],
            ranr=obj["ranr"],
            decnr=obj["decnr"],
            magnr=obj["magnr"],
            sigmagnr=obj["sigmagnr"],
            chinr=obj["chinr"],
            sharpnr=obj["sharpnr"],
        )
        fp_hists.append(rec)
    fp_hists.sort(key=lambda r: r["jd"])

    peak = 10 ** (0.4 * (21.5 - d["mag"])) * (1 if d["isdiffpos"] == "t" else -1)
    stamps = {}
    for key, label, amp in (
        ("cutoutScience", "sci", abs(peak) + 20.0),
        ("cutoutTemplate", "ref", 20.0 if obj["distnr"] >= 0 else 0.0),
        ("cutoutDifference", "diff", peak),
    ):
        stamps[key] = {
            "fileName": f"candid{candid}_pid{exp['pid']}_targ_{label}.fits.gz",
            "stampData": _gz(_fits_stamp(rng, amp, sky=100.0 if label != "diff" else 0.0)),
        }
    year = _from_jd(obj["jdstarthist"]).year
    alert = blank.new("ztf.alert")
    alert.update(
        schemavsn=ZTF_SCHEMA_VERSION,
        publisher="ZTF (www.ztf.caltech.edu)",
        objectId=_ztf_object_id(rng, year),
        candid=candid,
        candidate=candidate,
        prv_candidates=prv,
        fp_hists=fp_hists,
        **stamps,
    )
    return alert


def _ztf_packet(st: _State, cls: str, t: datetime) -> tuple[bytes, str, dict]:
    record = _ztf_record(st, cls, t)
    payload = _avro_container(ztf_schema(), record, st.rng)
    return (
        payload,
        f"ztf_{record['candid']}.avro",
        {
            "wire": "container",
            "record": record,
            "schema": ztf_schema(),
        },
    )


# --------------------------------------------------------------------------------------
# Rubin
# --------------------------------------------------------------------------------------

_RUBIN_BANDS = {"u": 0.05, "g": 0.15, "r": 0.25, "i": 0.25, "z": 0.2, "y": 0.1}
_RUBIN_M5 = {"u": 23.7, "g": 24.8, "r": 24.4, "i": 23.9, "z": 23.3, "y": 22.4}
_RUBIN_REJECT_REASONS = {
    "reliability": 0.5,
    "pixelFlags_bad": 0.15,
    "pixelFlags_saturatedCenter": 0.15,
    "isDipole": 0.2,
}
_RUBIN_ID_BASE = 169_298_400_000_000_000


def _flux(mag: float) -> float:
    return 10 ** ((_NJY_ZEROPOINT - mag) / 2.5)


def _rubin_design(rng: random.Random, cls: str, has_dipole: bool) -> dict[str, Any]:
    u = rng.uniform
    d: dict[str, Any] = {"rel": u(0.62, 1.0), "flags": (), "dipole": False, "star": False, "rising": False}
    if cls == "significant":
        d.update(_new_or_rising(rng), mag=u(16.8, 18.0), rel=u(0.9, 1.0))
    elif cls == "interesting":
        d.update(mag=u(18.8, 20.2), ndet=rng.randint(2, 10), age=u(4.0, 9.0), rel=u(0.8, 1.0))
    elif cls in ("routine", "rejected"):
        d.update(_routine_optical(rng, faintest=24.3, max_ndet=400, max_age=300.0))
        if cls == "rejected":
            reasons = dict(_RUBIN_REJECT_REASONS)
            if not has_dipole:
                reasons.pop("isDipole")
            reason = _draw(rng, reasons)
            if reason == "reliability":
                d["rel"] = u(0.0, 0.5)
            elif reason == "isDipole":
                d["dipole"] = True
                d["rel"] = u(0.2, 0.9)
            else:
                d["flags"] = (reason,)
                if reason == "pixelFlags_saturatedCenter":
                    d["mag"] = u(13.5, 16.5)
            d["reasons"] = [reason]
    else:
        raise ValueError(f"no Rubin design for class {cls!r}")
    return d


def _rubin_visit(rng: random.Random, t: datetime) -> int:
    day_obs = (t - timedelta(hours=12)).date()
    night_start = datetime(day_obs.year, day_obs.month, day_obs.day, 23, 0, tzinfo=UTC)
    seq = max(1, int((t - night_start).total_seconds() // 38) + rng.randint(0, 2))
    return int(f"{day_obs:%Y%m%d}{seq:05d}")


def _rubin_source(
    st: _State,
    blank: _Blank,
    name: str,
    *,
    source_id: int,
    object_id: int,
    t: datetime,
    ra: float,
    dec: float,
    band: str,
    mag: float,
    rel: float,
    template_flux: float,
    extendedness: float,
    dipole: bool = False,
    flags: Iterable[str] = (),
) -> dict[str, Any]:
    rng = st.rng
    u = rng.uniform
    rec = blank.new(name, false_bools=True)
    flux = _flux(mag)
    err = _flux(_RUBIN_M5[band]) / 5.0 * u(0.9, 1.2)
    mid = _mjd_tai(t)
    processed = mid + u(60.0, 150.0) / 86400.0
    x, y = u(10.0, 4062.0), u(10.0, 3990.0)
    _put(
        rec,
        diaSourceId=source_id,
        visit=_rubin_visit(rng, t),
        detector=rng.randint(0, 188),
        diaObjectId=object_id,
        ssObjectId=0,
        parentDiaSourceId=0,
        midpointMjdTai=mid,
        ra=ra + rng.gauss(0.0, 0.03 / 3600),
        raErr=u(2e-5, 8e-5),
        dec=dec + rng.gauss(0.0, 0.03 / 3600),
        decErr=u(2e-5, 8e-5),
        ra_dec_Cov=u(-2e-9, 2e-9),
        x=x,
        xErr=u(0.05, 1.5),
        y=y,
        yErr=u(0.05, 1.5),
        apFlux=flux * u(0.9, 1.1),
        apFluxErr=err * u(1.2, 1.8),
        snr=flux / err,
        psfFlux=flux,
        psfFluxErr=err,
        psfLnL=u(-2000.0, -100.0),
        psfChi2=u(300.0, 2000.0),
        psfNdata=rng.randint(300, 2000),
        trailNdata=0,
        dipoleNdata=0,
        scienceFlux=template_flux + flux,
        scienceFluxErr=err * u(1.0, 1.1),
        templateFlux=template_flux,
        templateFluxErr=err * u(0.05, 0.2),
        ixx=u(0.3, 3.0),
        iyy=u(0.3, 3.0),
        ixy=u(-0.5, 0.5),
        ixxPSF=u(0.3, 2.0),
        iyyPSF=u(0.3, 2.0),
        ixyPSF=u(-0.3, 0.3),
        extendedness=extendedness,
        reliability=rel,
        band=band,
        isDipole=dipole,
        timeProcessedMjdTai=processed,
        time_processed=datetime.fromtimestamp((processed - _UNIX_EPOCH_MJD) * 86400.0 - _TAI_MINUS_UTC_S, UTC),
        bboxSize=rng.randint(13, 45),
    )
    if dipole:
        _put(
            rec,
            dipoleFitAttempted=True,
            dipoleMeanFlux=flux * u(0.5, 1.5),
            dipoleMeanFluxErr=err,
            dipoleFluxDiff=flux * u(1.0, 3.0),
            dipoleFluxDiffErr=err,
            dipoleLength=u(1.5, 6.0),
            dipoleAngle=u(-180.0, 180.0),
            dipoleChi2=u(100.0, 900.0),
            dipoleNdata=rng.randint(100, 600),
        )
    for flag in flags:
        _put(rec, **{flag: True, "pixelFlags": True})
        if flag == "pixelFlags_saturatedCenter":
            _put(rec, pixelFlags_saturated=True)
    return rec


def _rubin_record(st: _State, cls: str, t: datetime) -> dict[str, Any]:
    rng = st.rng
    u = rng.uniform
    major, minor = st.rubin_major, st.rubin_minor
    blank = _rubin_blank(major, minor)
    ns = f"lsst.v{major}_{minor}"
    src_name, obj_name, forced_name = f"{ns}.diaSource", f"{ns}.diaObject", f"{ns}.diaForcedSource"
    has_dipole = blank.has_field(src_name, "isDipole")
    d = _rubin_design(rng, cls, has_dipole)
    band = _draw(rng, _RUBIN_BANDS)
    mag = min(d["mag"], _RUBIN_M5[band] - u(0.05, 0.4))
    ra, dec = _sky(rng, -90.0, 10.0)
    nsrc, span = d["ndet"], d["age"]
    source_id = st.unique(_RUBIN_ID_BASE + rng.randint(0, 10**14))
    object_id = source_id if nsrc == 1 else st.unique(_RUBIN_ID_BASE + rng.randint(0, 10**14))
    template_flux = _flux(mag) * u(0.5, 5.0) if d["star"] else _flux(mag) * u(-0.05, 0.05)
    extendedness = u(0.0, 0.2) if d["star"] else u(0.3, 1.0)
    common = {
        "object_id": object_id,
        "ra": ra,
        "dec": dec,
        "template_flux": template_flux,
        "extendedness": extendedness,
    }
    source = _rubin_source(
        st,
        blank,
        src_name,
        source_id=source_id,
        t=t,
        band=band,
        mag=mag,
        rel=d["rel"],
        dipole=d["dipole"],
        flags=d["flags"],
        **common,
    )
    mid = _mjd_tai(t)
    # earlier detections: the first `span` days ago; a rising design's are all fainter, same band
    prv = []
    for k in range(min(nsrc - 1, 4)):
        pt = t - timedelta(days=span if k == 0 else u(0.01, 1.0) * span)
        pband = band if d["rising"] else _draw(rng, _RUBIN_BANDS)
        pmag = mag + u(0.6, 1.5) if d["rising"] else min(mag + u(-0.3, 0.8), _RUBIN_M5[pband] - 0.05)
        prv.append(
            _rubin_source(
                st,
                blank,
                src_name,
                source_id=st.unique(_RUBIN_ID_BASE + rng.randint(0, 10**14)),
                t=pt,
                band=pband,
                mag=pmag,
                rel=u(0.65, 1.0),
                **common,
            )
        )
    prv.sort(key=lambda r: r["midpointMjdTai"])
    forced = []
    for _ in range(0 if nsrc == 1 else rng.randint(0, 3)):
        ft = t - timedelta(days=u(0.5, 30.0))
        rec = blank.new(forced_name, false_bools=True)
        fband = _draw(rng, _RUBIN_BANDS)
        ferr = _flux(_RUBIN_M5[fband]) / 5.0
        fflux = rng.gauss(0.0, ferr)
        _put(
            rec,
            diaForcedSourceId=st.unique(_RUBIN_ID_BASE + rng.randint(0, 10**14)),
            diaObjectId=object_id,
            ra=ra,
            dec=dec,
            visit=_rubin_visit(rng, ft),
            detector=source["detector"],
            psfFlux=fflux,
            psfFluxErr=ferr,
            x=source["x"],
            y=source["y"],
            midpointMjdTai=_mjd_tai(ft),
            scienceFlux=template_flux + fflux,
            scienceFluxErr=ferr,
            band=fband,
            timeProcessedMjdTai=_mjd_tai(ft) + 0.001,
            time_processed=ft + timedelta(minutes=2),
        )
        forced.append(rec)
    forced.sort(key=lambda r: r["midpointMjdTai"])

    obj = blank.new(obj_name)
    flux = source["psfFlux"]
    _put(
        obj,
        diaObjectId=object_id,
        validityStartMjdTai=source["timeProcessedMjdTai"] if "timeProcessedMjdTai" in source else mid + 0.002,
        validityStart=t + timedelta(minutes=3),
        ra=ra,
        raErr=source.get("raErr"),
        dec=dec,
        decErr=source.get("decErr"),
        nDiaSources=nsrc,
        firstDiaSourceMjdTai=mid - span,
        lastDiaSourceMjdTai=mid,
        **{
            f"{band}_psfFluxMean": flux * u(0.8, 1.2),
            f"{band}_psfFluxMeanErr": source["psfFluxErr"] / math.sqrt(max(1, nsrc)),
            f"{band}_psfFluxSigma": flux * u(0.0, 0.3) if nsrc > 1 else None,
            f"{band}_psfFluxNdata": max(1, nsrc // 3),
            f"{band}_psfFluxMin": flux * u(0.5, 1.0),
            f"{band}_psfFluxMax": flux * u(1.0, 1.5),
            f"{band}_psfFluxErrMean": source["psfFluxErr"],
            f"{band}_scienceFluxMean": source.get("scienceFlux"),
            f"{band}_scienceFluxMeanErr": source.get("scienceFluxErr"),
        },
    )
    peak = flux / 50.0
    alert = blank.new(f"{ns}.alert")
    _put(
        alert,
        diaSourceId=source_id,
        alertId=source_id,
        diaSource=source,
        prvDiaSources=prv or None,
        prvDiaForcedSources=forced,
        diaObject=obj,
        cutoutDifference=_fits_stamp(rng, peak),
        cutoutScience=_fits_stamp(rng, peak + template_flux / 50.0, sky=10.0),
        cutoutTemplate=_fits_stamp(rng, template_flux / 50.0, sky=10.0),
    )
    return alert


def _rubin_packet(st: _State, cls: str, t: datetime, wire: str) -> tuple[bytes, str, dict]:
    major, minor = st.rubin_major, st.rubin_minor
    schema = _rubin_schema_cached(major, minor)
    record = _rubin_record(st, cls, t)
    source_id = record["diaSource"]["diaSourceId"]
    if wire == "confluent":
        header = b"\x00" + struct.pack(">I", major * 100 + minor)
        payload = header + _schemaless(schema, record)
        meta = {"wire": wire, "record": record, "schema": schema}
        return payload, f"rubin_{source_id}.confluent", meta
    payload = _avro_container(schema, record, st.rng)
    meta = {"wire": wire, "record": record, "schema": schema}
    return payload, f"rubin_{source_id}.avro", meta


# --------------------------------------------------------------------------------------
# GCN
# --------------------------------------------------------------------------------------

_GCN_SCHEMA = "https://gcn.nasa.gov/schema/main/gcn/notices"
_GCN_CRITICAL_MISSIONS = {"fermi_json": 0.2, "fermi_voe": 0.2, "swift": 0.3, "icecube": 0.1, "svom": 0.2}
_GCN_REJECTED_KINDS = {
    "fermi_noise_voe": 0.3,
    "fermi_test_voe": 0.1,
    "fermi_test_json": 0.1,
    "swift_retraction": 0.2,
    "icecube_retraction": 0.1,
    "svom_test": 0.2,
}


def _trigger_second(st: _State, trigger: datetime) -> datetime:
    """The trigger time, nudged by whole seconds (-1, +1, -2, ...) so that integer trigger
    ids (mission elapsed seconds) stay unique within a run."""
    for step in range(10_000):
        shift = (step + 1) // 2 * (1 if step % 2 else -1)
        candidate = trigger + timedelta(seconds=shift)
        key = ("trig", int(_met(candidate)))
        if key not in st.used:
            st.used.add(key)
            return candidate
    raise RuntimeError("no free trigger second")


def _fermi_ids(trigger: datetime) -> tuple[int, str]:
    trigid = int(_met(trigger))
    frac = (trigger.hour * 3600 + trigger.minute * 60 + trigger.second) / 86400.0
    return trigid, f"bn{trigger:%y%m%d}{int(frac * 1000):03d}"


def _fermi_json(st: _State, t: datetime, err: float, *, tense: str = "current", record_number: int = 0) -> dict:
    rng = st.rng
    u = rng.uniform
    trigger = _trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(8.0, 600.0))
    trigid, bn = _fermi_ids(trigger)
    ra, dec = _sky(rng, -90.0, 90.0)
    gl, gb = _galactic(ra, dec)
    record_number = record_number or rng.choice((2, 3, 4))
    subtype = {2: "FLIGHT_POSITION", 3: "GROUND_POSITION", 4: "FINAL_POSITION"}[record_number]
    archive = f"http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/{trigger:%Y}/{bn}"
    grb = u(0.75, 0.99)
    return {
        "$schema": f"{_GCN_SCHEMA}/fermi/gbm/trigger.schema.json",
        "mission": "Fermi",
        "instrument": "GBM",
        "messenger": "EM",
        "alert_datetime": _iso(sent, 0),
        "alert_tense": tense,
        "alert_type": "update",
        "record_number": record_number,
        "subtype": subtype,
        "trigger_time": _iso(trigger, 2),
        "trigger_type": "rate",
        "id": [str(trigid), bn],
        "ra": round(ra, 3),
        "dec": round(dec, 3),
        "ra_dec_error": round(err, 2),
        "containment_probability": 0.68,
        "systematic_included": True,
        "galactic_l": round(gl, 2),
        "galactic_b": round(gb, 2),
        "classification": {"GRB": round(grb, 2), "SGR": round((1 - grb) * 0.6, 2)},
        "rate_snr": round(u(4.5, 40.0), 1),
        "rate_duration": rng.choice((0.064, 0.256, 1.024, 2.048, 4.096)),
        "rate_energy_range": [47, 291],
        "spectral_band_units": "keV",
        "hardness_ratio": round(u(0.3, 2.5), 2),
        "instrument_phi": rng.randint(0, 359),
        "instrument_theta": rng.randint(0, 180),
        "latitude": round(u(-25.6, 25.6), 2),
        "longitude": round(u(0.0, 360.0), 1),
        "sun_distance": round(u(10.0, 170.0), 2),
        "localization_algorithm": "3",
        "data_archive_page": archive,
        "light_curve_url": f"{archive}/quicklook/glg_lc_medres34_{bn}.gif",
        "ground_generated_notice": record_number > 2,
        "human_in_the_loop": record_number == 4,
    }


def _fermi_voevent(
    st: _State,
    t: datetime,
    err: float,
    *,
    role: str = "observation",
    noise: bool = False,
) -> str:
    rng = st.rng
    u = rng.uniform
    trigger = _trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(8.0, 600.0))
    trigid, bn = _fermi_ids(trigger)
    ra, dec = _sky(rng, -90.0, 90.0)
    gl, gb = _galactic(ra, dec)
    seq = rng.randint(1, 99)
    serial = st.next_serial()
    iso = _iso(trigger, 2, z=False)
    ivorn = f"ivo://nasa.gsfc.gcn/Fermi#GBM_Flt_Pos_{iso}_{trigid}_{seq}-{serial}"
    tjd = int(_jd(trigger) - 2440000.5)
    sod = trigger.hour * 3600 + trigger.minute * 60 + trigger.second + trigger.microsecond / 1e6
    ml_index, ml_prob = (2, rng.randint(80, 100)) if noise else (4, rng.randint(70, 99))
    sec_index = rng.choice((0, 5, 6, 9, 11, 19))
    def_not_grb = "true" if noise else "false"
    url = (
        f"http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/{trigger:%Y}/{bn}/quicklook/glg_lc_medres34_{bn}.gif"
    )
    return f"""<VOEvent xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
ivorn="{ivorn}" role="{role}" \
version="2.0" xsi:schemaLocation="http://www.ivoa.net/xml/VOEvent/v2.0  \
http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd">
  <Who>
    <AuthorIVORN>ivo://nasa.gsfc.tan/gcn</AuthorIVORN>
    <Author>
      <shortName>Fermi (via VO-GCN)</shortName>
      <contactName>Julie McEnery</contactName>
      <contactPhone>+1-301-286-1632</contactPhone>
      <contactEmail>Julie.E.McEnery@nasa.gov</contactEmail>
    </Author>
    <Date>{_iso(sent, 0, z=False)}</Date>
    <Description>This VOEvent message was created with GCN VOE version: 15.08 17jun22\
</Description>
  </Who>
  <What>
    <Param name="Packet_Type" value="111"/>
    <Param name="Pkt_Ser_Num" value="{serial}"/>
    <Param name="TrigID" value="{trigid}" ucd="meta.id"/>
    <Param name="Sequence_Num" value="{seq}" ucd="meta.id.part"/>
    <Param name="Burst_TJD" value="{tjd}" unit="days" ucd="time"/>
    <Param name="Burst_SOD" value="{sod:.2f}" unit="sec" ucd="time"/>
    <Param name="Burst_Inten" value="{rng.randint(50, 3000)}" unit="cts" ucd="phot.count"/>
    <Param name="Trig_Timescale" value="2.048" unit="sec" ucd="time.interval"/>
    <Param name="Data_Timescale" value="2.048" unit="sec" ucd="time.interval"/>
    <Param name="Data_Signif" value="{u(4.5, 40.0):.2f}" unit="sigma" ucd="stat.snr"/>
    <Param name="Phi" value="{u(0, 360):.2f}" unit="deg" ucd="pos.az.azi"/>
    <Param name="Theta" value="{u(0, 180):.2f}" unit="deg" ucd="pos.az.zd"/>
    <Param name="SC_Long" value="{u(0, 360):.2f}" unit="deg" ucd="pos.earth.lon"/>
    <Param name="SC_Lat" value="{u(-25.6, 25.6):.2f}" unit="deg" ucd="pos.earth.lat"/>
    <Param name="Algorithm" value="3" unit="dn"/>
    <Param name="Most_Likely_Index" value="{ml_index}" unit="dn"/>
    <Param name="Most_Likely_Prob" value="{ml_prob}"/>
    <Param name="Sec_Most_Likely_Index" value="{sec_index}" unit="dn"/>
    <Param name="Sec_Most_Likely_Prob" value="{100 - ml_prob}"/>
    <Param name="Hardness_Ratio" value="{u(0.3, 2.5):.2f}" ucd="arith.ratio"/>
    <Param name="Trigger_ID" value="{"0x00000001" if noise else "0x00000000"}"/>
    <Param name="Misc_flags" value="0x01000000"/>
    <Group name="Trigger_ID">
      <Param name="Def_NOT_a_GRB" value="{def_not_grb}"/>
      <Param name="Target_in_Blk_Catalog" value="false"/>
      <Param name="Spatial_Prox_Match" value="false"/>
      <Param name="Temporal_Prox_Match" value="false"/>
      <Param name="Test_Submission" value="{"true" if role == "test" else "false"}"/>
    </Group>
    <Group name="Misc_Flags">
      <Param name="Values_Out_of_Range" value="false"/>
      <Param name="Delayed_Transmission" value="false"/>
      <Param name="Flt_Generated" value="true"/>
      <Param name="Gnd_Generated" value="false"/>
    </Group>
    <Param name="LightCurve_URL" value="{url}" ucd="meta.ref.url"/>
    <Param name="Coords_Type" value="1" unit="dn"/>
    <Param name="Coords_String" value="source_object"/>
    <Group name="Obs_Support_Info">
      <Description>The Sun and Moon values are valid at the time the VOEvent XML message \
was created.</Description>
      <Param name="Sun_Distance" value="{u(10, 170):.2f}" unit="deg" ucd="pos.angDistance"/>
      <Param name="MOON_Distance" value="{u(5, 175):.2f}" unit="deg" ucd="pos.angDistance"/>
      <Param name="Moon_Illum" value="{u(0, 100):.2f}" unit="%" ucd="arith.ratio"/>
      <Param name="Galactic_Long" value="{gl:.2f}" unit="deg" ucd="pos.galactic.lon"/>
      <Param name="Galactic_Lat" value="{gb:.2f}" unit="deg" ucd="pos.galactic.lat"/>
    </Group>
    <Description>The Fermi-GBM location of a transient.</Description>
  </What>
  <WhereWhen>
    <ObsDataLocation>
      <ObservatoryLocation id="GEOLUN"/>
      <ObservationLocation>
        <AstroCoordSystem id="UTC-FK5-GEO"/>
        <AstroCoords coord_system_id="UTC-FK5-GEO">
          <Time unit="s">
            <TimeInstant>
              <ISOTime>{iso}</ISOTime>
            </TimeInstant>
          </Time>
          <Position2D unit="deg">
            <Name1>RA</Name1>
            <Name2>Dec</Name2>
            <Value2>
              <C1>{ra:.4f}</C1>
              <C2>{dec:.4f}</C2>
            </Value2>
            <Error2Radius>{err:.4f}</Error2Radius>
          </Position2D>
        </AstroCoords>
      </ObservationLocation>
    </ObsDataLocation>
    <Description>The RA,Dec coordinates are of the type: source_object.</Description>
  </WhereWhen>
  <How>
    <Description>Fermi Satellite, GBM Instrument</Description>
    <Reference uri="http://gcn.gsfc.nasa.gov/fermi.html" type="url"/>
  </How>
  <Why importance="{0.1 if noise else 0.5}">
    <Inference probability="{0.1 if noise else 0.5}">
      <Concept>process.variation.burst;em.gamma</Concept>
    </Inference>
  </Why>
  <Citations>
    <EventIVORN cite="followup">ivo://nasa.gsfc.gcn/Fermi#GBM_Alert_{iso}_{trigid}_1-{serial}\
</EventIVORN>
    <Description>This is an updated position to the original trigger.</Description>
  </Citations>
</VOEvent>
"""


def _swift_json(st: _State, t: datetime, err: float, *, retraction: bool = False, tense: str = "current") -> dict:
    rng = st.rng
    u = rng.uniform
    trigger = _trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(300.0, 1800.0))
    trigid = str(int(_met(trigger)) + 25)
    fermi = int(_met(trigger) - u(0.0, 30.0))
    notice: dict[str, Any] = {
        "$schema": f"{_GCN_SCHEMA}/swift/bat/Guano.schema.json",
        "mission": "Swift",
        "instrument": "BAT-GUANO",
        "messenger": "EM",
        "record_number": rng.randint(2, 4) if retraction else rng.randint(1, 3),
        "alert_datetime": _iso(sent, 1),
        "alert_tense": tense,
        "alert_type": "retraction" if retraction else "update",
        "trigger_time": _iso(trigger, 2),
        "follow_up_event": f"Fermi {fermi}",
        "follow_up_type": "GRB",
        "data_archive_page": f"https://guano.swift.psu.edu/trigger_report?id={trigid}",
        "id": [trigid],
    }
    if not retraction:
        ra, dec = _sky(rng, -90.0, 90.0)
        snr = round(u(6.0, 30.0), 2)
        notice.update(
            ra=round(ra, 3),
            dec=round(dec, 3),
            ra_dec_error=round(err, 3),
            containment_probability=0.9,
            systematic_included=True,
            rate_snr=snr,
            rate_duration=rng.choice((0.256, 1.024, 4.096)),
            rate_energy_range=[15, 350],
            image_snr=round(snr * u(0.7, 1.0), 2),
            image_energy_range=[15, 350],
            classification={"GRB": 1},
            far=10 ** u(-7.0, -4.0),
        )
    return notice


def _ep_json(st: _State, t: datetime, err: float) -> dict:
    rng = st.rng
    trigger = _trigger_second(st, t)
    sent = trigger + timedelta(seconds=rng.uniform(120.0, 900.0))
    ra, dec = _sky(rng, -90.0, 90.0)
    return {
        "$schema": f"{_GCN_SCHEMA}/einstein_probe/wxt/alert.schema.json",
        "mission": "Einstein Probe",
        "instrument": "WXT",
        "messenger": "EM",
        "alert_datetime": _iso(sent, 0),
        "alert_tense": "current",
        "alert_type": "initial",
        "record_number": 1,
        "trigger_time": _iso(trigger, 2),
        "id": [f"0{int(trigger.timestamp())}"],
        "ra": round(ra, 4),
        "dec": round(dec, 4),
        "ra_dec_error": round(err, 4),
        "image_energy_range": [0.5, 4],
        "net_count_rate": round(rng.uniform(0.05, 20.0), 3),
        "image_snr": round(rng.uniform(7.0, 40.0), 2),
        "additional_info": "Fast X-ray transient detected by WXT.",
    }


def _icecube_json(st: _State, t: datetime, err: float, *, retraction: bool = False) -> dict:
    rng = st.rng
    u = rng.uniform
    trigger = _trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(30.0, 1200.0))
    gold = rng.random() < 0.5
    run, event = rng.randint(140000, 149999), rng.randint(10**6, 9 * 10**7)
    suffix = string.ascii_uppercase[st.next_serial() % 26]
    notice: dict[str, Any] = {
        "$schema": f"{_GCN_SCHEMA}/icecube/single_neutrino_alerts.schema.json",
        "mission": "IceCube",
        "instrument": "IC86",
        "messenger": "Neutrino",
        "pipeline": "Gold Track Alert" if gold else "Bronze Track Alert",
        "record_number": 2 if retraction else 1,
        "event_name": [f"IceCube-{trigger:%y%m%d}{suffix}"],
        "id": [f"{run}_{event}"],
        "alert_datetime": _iso(sent, 1),
        "alert_type": "retraction" if retraction else "initial",
        "alert_tense": "current",
        "trigger_time": _iso(trigger, 6),
    }
    if not retraction:
        ra, dec = _sky(rng, -90.0, 90.0)
        notice.update(
            alert_topology="Track",
            number_of_events=1,
            ra=round(ra, 2),
            dec=round(dec, 2),
            ra_dec_error=round(err, 2),
            containment_probability=0.9,
            systematic_included=False,
            nu_energy=round(u(100.0, 800.0), 2),
            p_astro=round(u(0.5, 0.9) if gold else u(0.3, 0.5), 5),
            far=10 ** u(-9.0, -7.0),
        )
    return notice


def _svom_json(st: _State, t: datetime, err: float, *, tense: str = "current") -> dict:
    rng = st.rng
    trigger = _trigger_second(st, t)
    sent = trigger + timedelta(seconds=rng.uniform(15.0, 120.0))
    ra, dec = _sky(rng, -90.0, 90.0)
    return {
        "$schema": f"{_GCN_SCHEMA}/svom/trigger.schema.json",
        "mission": "SVOM",
        "instrument": "ECLAIRs",
        "messenger": "EM",
        "alert_datetime": _iso(sent, 0),
        "alert_tense": tense,
        "alert_type": rng.choice(("initial", "update")),
        "record_number": 1,
        "id": [f"sb{trigger:%y%m%d}{st.next_serial() % 100:02d}"],
        "trigger_time": _iso(trigger, 6),
        "ra": round(ra, 4),
        "dec": round(dec, 4),
        "ra_dec_error": round(err, 3),
        "image_snr": round(rng.uniform(7.0, 30.0), 2),
        "image_duration": rng.choice((0, 20, 40, 80)),
        "image_energy_range": [4, 20],
        "trigger_type": "rate",
        "slew_status": rng.choice(("accepted", "not_requested")),
    }


def _gcn_notice(st: _State, cls: str, t: datetime) -> tuple[str, Any, str]:
    """(format 'json'|'xml', notice dict or XML text, slug for the name)."""
    rng = st.rng
    u = rng.uniform
    if cls == "critical":
        kind = _draw(rng, _GCN_CRITICAL_MISSIONS)
        if kind == "fermi_json":
            return "json", _fermi_json(st, t, u(1.0, 4.0), record_number=4), "fermi-gbm"
        if kind == "fermi_voe":
            return "xml", _fermi_voevent(st, t, u(1.0, 4.0)), "fermi-gbm"
        if kind == "swift":
            return "json", _swift_json(st, t, u(0.02, 0.1)), "swift-bat-guano"
        if kind == "icecube":
            return "json", _icecube_json(st, t, u(0.3, 1.5)), "icecube"
        return "json", _svom_json(st, t, u(0.08, 0.2)), "svom-eclairs"
    if cls == "significant":
        x = rng.random()
        if x < 0.2:
            return "json", _ep_json(st, t, u(0.01, 0.05)), "ep-wxt"
        if x < 0.6:
            return "json", _fermi_json(st, t, u(6.0, 25.0), record_number=2), "fermi-gbm"
        return "xml", _fermi_voevent(st, t, u(6.0, 25.0)), "fermi-gbm"
    if cls == "rejected":
        kind = _draw(rng, _GCN_REJECTED_KINDS)
        if kind == "fermi_noise_voe":
            return "xml", _fermi_voevent(st, t, u(8.0, 40.0), noise=True), "fermi-gbm"
        if kind == "fermi_test_voe":
            return "xml", _fermi_voevent(st, t, u(1.0, 25.0), role="test"), "fermi-gbm"
        if kind == "fermi_test_json":
            return "json", _fermi_json(st, t, u(1.0, 25.0), tense="test"), "fermi-gbm"
        if kind == "swift_retraction":
            return "json", _swift_json(st, t, 0.05, retraction=True), "swift-bat-guano"
        if kind == "icecube_retraction":
            return "json", _icecube_json(st, t, 1.0, retraction=True), "icecube"
        return "json", _svom_json(st, t, u(0.08, 0.2), tense="test"), "svom-eclairs"
    raise ValueError(f"no GCN design for class {cls!r}")


def _gcn_packet(st: _State, cls: str, t: datetime) -> tuple[bytes, str, dict]:
    fmt, notice, slug = _gcn_notice(st, cls, t)
    serial = st.next_serial()
    if fmt == "json":
        trig = notice["id"][0]
        name = f"gcn_{slug}_{trig}_{serial:06d}.json"
        payload = json.dumps(notice, indent=2).encode("utf-8")
    else:
        trig = notice.split('name="TrigID" value="', 1)[1].split('"', 1)[0]
        name = f"gcn_{slug}_{trig}_{serial:06d}.xml"
        payload = notice.encode("utf-8")
    return payload, name, {"wire": fmt, "notice": notice}


# --------------------------------------------------------------------------------------
# corruption
# --------------------------------------------------------------------------------------


def _core_length(schema: dict[str, Any], record: dict[str, Any]) -> int:
    """Encoded length of the record up to (not including) its trailing cutout fields.

    Truncating inside the cutout bytes is not detected by every Avro reader (a short read
    of the last ``bytes`` field goes unnoticed), so truncations cut before them."""
    trimmed = dict(record)
    cut = 0
    for key in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
        if key in trimmed:
            trimmed[key] = None
            cut += 1
    return len(_schemaless(schema, trimmed)) - cut


_GCN_TIME_FIELDS = ("trigger_time", "observation_start", "alert_datetime", "time")


def _off_sky(st: _State, payload: bytes, meta: dict) -> bytes:
    """The same packet, well-formed but with an impossible declination (95 deg)."""
    wire = meta["wire"]
    if wire == "json":
        notice = {**meta["notice"], "dec": 95.0}
        notice.setdefault("ra", 180.0)
        return json.dumps(notice, indent=2).encode("utf-8")
    if wire == "xml":
        head, _, rest = meta["notice"].partition("<C2>")
        return (head + "<C2>95.0000" + rest[rest.index("</C2>") :]).encode("utf-8")
    record, schema = meta["record"], meta["schema"]
    key = "candidate" if "candidate" in record else "diaSource"
    record = {**record, key: {**record[key], "dec": 95.0}}
    if wire == "confluent":
        return payload[:5] + _schemaless(schema, record)
    return _avro_container(schema, record, st.rng)


def _corrupt(st: _State, source: str, payload: bytes, meta: dict) -> bytes:
    """Undecodable bytes, unique per packet (a cut keeps an id or the random sync marker):
    the pipeline files dead letters by content, so two equal corrupt packets would be one."""
    rng = st.rng
    wire = meta["wire"]
    if rng.random() < 0.2:
        return _off_sky(st, payload, meta)
    if wire == "container":
        mode = rng.choice(("truncate", "truncate", "flip_sync", "flip_header"))
        if mode == "flip_header":
            # flipped magic (fastavro alone does not check it) and schema JSON start
            i = payload.index(b"{", payload.index(b"avro.schema"))
            flipped = bytes(b ^ 0x5A for b in payload[i : i + 8])
            magic = bytes(b ^ 0xFF for b in payload[:4])
            return magic + payload[4:i] + flipped + payload[i + 8 :]
        if mode == "flip_sync":
            tail = bytes(b ^ rng.randint(1, 255) for b in payload[-16:])
            return payload[:-16] + tail
        schema = meta["schema"]
        data_len = len(_schemaless(schema, meta["record"]))
        data_start = len(payload) - 16 - data_len
        core = _core_length(schema, meta["record"])
        return payload[: data_start + rng.randint(0, max(0, core - 1))]
    if wire == "confluent":
        mode = rng.choice(("truncate", "truncate", "flip_magic"))
        if mode == "flip_magic":
            return bytes([rng.randint(1, 255)]) + payload[1:]
        core = _core_length(meta["schema"], meta["record"])
        return payload[: 5 + rng.randint(16, core - 1)]  # past the leading alert / source id
    if wire == "json":
        if rng.random() < 0.5:  # no time at all: not even the alert_datetime fallback
            notice = {k: v for k, v in meta["notice"].items() if k not in _GCN_TIME_FIELDS}
            return json.dumps(notice, indent=2).encode("utf-8")
        text = payload.decode("utf-8")
        after_time = text.index("\n", text.index('"trigger_time"'))  # the (unique) trigger time
        return text[: rng.randint(after_time, len(text) - 2)].encode("utf-8")
    if wire == "xml":
        return payload[: rng.randint(len(payload) // 5, len(payload) * 9 // 10)]
    raise ValueError(f"cannot corrupt wire {wire!r} of {source}")


# --------------------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------------------


def generate_packets(
    count: int,
    *,
    seed: int = 0,
    mix: dict[str, float] | None = None,
    start: datetime | None = None,
    bad_fraction: float = 0.0,
    rubin_wire: str = "container",
    rubin_version: str = DEFAULT_RUBIN_VERSION,
    span_s: float = WINDOW_SECONDS,
) -> Iterator[SimulatedPacket]:
    """Yield ``count`` simulated packets.

    Sources are drawn by ``mix`` (default ztf 0.6, rubin 0.35, gcn 0.05); event times are
    spread (sorted) over the ``span_s`` seconds (default an hour) after ``start`` (default
    2025-09-06T02:00Z; naive datetimes are taken as UTC); ``round(count * bad_fraction)``
    packets are deliberately corrupt (true_class 'bad'). ``rubin_wire`` is 'container',
    'confluent' or 'both' (alternating);
    ``rubin_version`` picks the Rubin alert schema (default 9.0). Arguments are validated
    immediately; the packets are produced lazily. Same arguments -> identical bytes.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an int >= 0, got {count!r}")
    weights = _normalise_mix(DEFAULT_MIX if mix is None else dict(mix))
    if not isinstance(bad_fraction, (int, float)) or not 0.0 <= bad_fraction <= 1.0:
        raise ValueError(f"bad_fraction must be within 0..1, got {bad_fraction!r}")
    if rubin_wire not in RUBIN_WIRES:
        raise ValueError(f"rubin_wire must be one of {RUBIN_WIRES}, got {rubin_wire!r}")
    if not span_s >= 0:
        raise ValueError(f"span_s must be >= 0, got {span_s!r}")
    if start is None:
        start = DEFAULT_START
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    else:
        start = start.astimezone(UTC)
    major, minor = _parse_version(rubin_version)
    if weights["rubin"] > 0:
        rubin_schema((major, minor))  # validates the version and warms the cache
    if weights["ztf"] > 0:
        ztf_schema()
    return _generate(count, seed, weights, start, bad_fraction, rubin_wire, major, minor, span_s)


def _generate(
    count: int,
    seed: int,
    weights: dict[str, float],
    start: datetime,
    bad_fraction: float,
    rubin_wire: str,
    major: int,
    minor: int,
    span_s: float,
) -> Iterator[SimulatedPacket]:
    rng = random.Random(seed)
    # a random serial base keeps GCN names / ivorns apart between runs with different seeds
    st = _State(rng=rng, rubin_major=major, rubin_minor=minor, serial=rng.randrange(100_000, 900_000))
    offsets = sorted(rng.uniform(0.0, span_s) for _ in range(count))
    n_bad = min(count, round(count * bad_fraction))
    bad = set(rng.sample(range(count), n_bad)) if n_bad else set()
    for i, offset in enumerate(offsets):
        t = start + timedelta(seconds=offset)
        source = _draw(rng, weights)
        if source == "ztf":
            cls = _draw(rng, ZTF_CLASS_WEIGHTS)
            payload, name, meta = _ztf_packet(st, cls, t)
        elif source == "rubin":
            cls = _draw(rng, RUBIN_CLASS_WEIGHTS)
            wire = rubin_wire
            if wire == "both":
                wire = "container" if st.rubin_count % 2 == 0 else "confluent"
            st.rubin_count += 1
            payload, name, meta = _rubin_packet(st, cls, t, wire)
        else:
            cls = _draw(rng, GCN_CLASS_WEIGHTS)
            payload, name, meta = _gcn_packet(st, cls, t)
        if i in bad:
            payload = _corrupt(st, source, payload, meta)
            cls = "bad"
        yield SimulatedPacket(source=source, payload=payload, name=name, true_class=cls, event_time=t)


def classes_by_source() -> dict[str, tuple[str, ...]]:
    """Which designed classes each source's simulator can make."""
    return {
        "ztf": tuple(ZTF_CLASS_WEIGHTS),
        "rubin": tuple(RUBIN_CLASS_WEIGHTS),
        "gcn": tuple(GCN_CLASS_WEIGHTS),
    }


def designed_packets(
    plan: Iterable[tuple[str, str]], *, seed: int = 0, start: datetime | None = None, span_s: float = 60.0
) -> Iterator[SimulatedPacket]:
    """One packet per (source, class) of `plan`, designed to land in that class (the injection test's input)."""
    plan = list(plan)
    possible = classes_by_source()
    for source, cls in plan:
        if cls not in possible.get(source, ()):
            raise ValueError(f"the simulator cannot make a {cls} {source} packet; it makes {possible.get(source)}")
    start = (start or DEFAULT_START).astimezone(UTC)
    rng = random.Random(seed)
    major, minor = _parse_version(DEFAULT_RUBIN_VERSION)
    st = _State(rng=rng, rubin_major=major, rubin_minor=minor, serial=rng.randrange(100_000, 900_000))
    offsets = sorted(rng.uniform(0.0, span_s) for _ in plan)
    for (source, cls), offset in zip(plan, offsets, strict=True):
        t = start + timedelta(seconds=offset)
        if source == "ztf":
            payload, name, _meta = _ztf_packet(st, cls, t)
        elif source == "rubin":
            st.rubin_count += 1
            payload, name, _meta = _rubin_packet(st, cls, t, "container")
        else:
            payload, name, _meta = _gcn_packet(st, cls, t)
        yield SimulatedPacket(source=source, payload=payload, name=name, true_class=cls, event_time=t)
