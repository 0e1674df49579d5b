"""What the formats share: time scales, random draws, sky positions, FITS stamps, optical light-curve designs and
GCN trigger ids."""

from __future__ import annotations

import gzip
import math
import random
import struct
from datetime import datetime, timedelta
from typing import Any

from devtools.simulator.packet import UTC, State

_UNIX_EPOCH_JD = 2440587.5
UNIX_EPOCH_MJD = 40587.0
TAI_MINUS_UTC_S = 37.0
_MISSION_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)  # Fermi / Swift MET epoch
_LEAP_SECONDS_SINCE_2001 = 5


def julian_date(t: datetime) -> float:
    return t.timestamp() / 86400.0 + _UNIX_EPOCH_JD


def mjd_tai(t: datetime) -> float:
    return (t.timestamp() + TAI_MINUS_UTC_S) / 86400.0 + UNIX_EPOCH_MJD


def from_jd(jd: float) -> datetime:
    return datetime.fromtimestamp((jd - _UNIX_EPOCH_JD) * 86400.0, UTC)


def iso_time(t: datetime, decimals: int = 2, z: bool = True) -> str:
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        frac = f"{t.microsecond / 1e6:.{decimals}f}"
        if frac.startswith("1"):  # rounding overflow, keep it simple
            frac = "0." + "9" * decimals
        text += frac[1:]
    return text + ("Z" if z else "")


def mission_seconds(t: datetime) -> float:
    return (t - _MISSION_EPOCH).total_seconds() + _LEAP_SECONDS_SINCE_2001


def draw(rng: random.Random, weights: dict[str, float]) -> str:
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


def random_sky(rng: random.Random, dec_min: float, dec_max: float) -> tuple[float, float]:
    """Uniform on the sphere between two declinations."""
    lo, hi = math.sin(math.radians(dec_min)), math.sin(math.radians(dec_max))
    return rng.uniform(0.0, 360.0), math.degrees(math.asin(rng.uniform(lo, hi)))


_GAL = (
    (-0.0548755604, -0.8734370902, -0.4838350155),
    (0.4941094279, -0.4448296300, 0.7469822445),
    (-0.8676661490, -0.1980763734, 0.4559837762),
)


def galactic(ra: float, dec: float) -> tuple[float, float]:
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


def fits_stamp(rng: random.Random, peak: float, sky: float = 0.0) -> bytes:
    """A tiny but valid 8x8 float32 FITS image: noise plus a Gaussian of height ``peak``."""
    noise = _NOISE[rng.randrange(len(_NOISE))]
    scale = rng.uniform(0.5, 3.0)
    pixels = [sky + peak * w + scale * n for w, n in zip(_PSF, noise, strict=True)]
    return _FITS_HEADER + _PIX_FORMAT.pack(*pixels).ljust(2880, b"\0")


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def new_or_rising(rng: random.Random) -> dict[str, Any]:
    """A first detection, or a young (< 1 day) one whose earlier detections are all >= 0.6 mag
    fainter in the same band: rising by >= 0.6 mag/day."""
    if rng.random() < 0.5:
        return {"ndet": 1, "age": 0.0, "rising": False}
    return {"ndet": rng.randint(2, 3), "age": rng.uniform(0.2, 1.0), "rising": True}


def routine_optical(rng: random.Random, faintest: float, max_ndet: int, max_age: float) -> dict[str, Any]:
    """A known variable (star-like, first seen > 40 days ago) or a source fainter than mag 20.9."""
    u = rng.uniform
    if rng.random() < 0.7:
        ndet = int(math.exp(u(math.log(11), math.log(max_ndet))))
        return {"mag": u(15.5, 20.9), "ndet": max(ndet, 11), "age": u(40.0, max_age), "star": True}
    ndet = rng.randint(1, 10)
    return {"mag": u(20.9, faintest), "ndet": ndet, "age": 0.0 if ndet == 1 else u(0.5, 25.0), "star": False}


def trigger_second(st: State, trigger: datetime) -> datetime:
    """The trigger time, nudged by whole seconds (-1, +1, -2, ...) so that integer trigger
    ids (mission elapsed seconds) stay unique within a run."""
    for step in range(10_000):
        shift = (step + 1) // 2 * (1 if step % 2 else -1)
        candidate = trigger + timedelta(seconds=shift)
        key = ("trig", int(mission_seconds(candidate)))
        if key not in st.used:
            st.used.add(key)
            return candidate
    raise RuntimeError("no free trigger second")


def fermi_ids(trigger: datetime) -> tuple[int, str]:
    trigid = int(mission_seconds(trigger))
    frac = (trigger.hour * 3600 + trigger.minute * 60 + trigger.second) / 86400.0
    return trigid, f"bn{trigger:%y%m%d}{int(frac * 1000):03d}"
