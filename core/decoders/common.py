"""Helpers shared by the decoders: errors, time scales, sentinels, magnitudes."""

from __future__ import annotations

import math
import re
import warnings
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

# Sentinels that mean "no value" in survey packets (ZTF uses -999, some fields -99 or 'null').
_SENTINELS = (-999.0, -99.0, -999, -99)
# Rubin fluxes are in nanojansky: an AB magnitude is 31.4 - 2.5 log10(flux).
NJY_ZERO_POINT = 31.4


class DecodeError(ValueError):
    """The packet cannot become an event; the message is the reason an operator reads."""


def clean(value: Any) -> Any:
    """None for the survey sentinels, NaN and the string 'null'; the value otherwise."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in _SENTINELS:
        return None
    if isinstance(value, str) and value.strip().lower() in ("null", "none", ""):
        return None
    return value


def require(record: dict[str, Any], *path: str) -> Any:
    """The value at `path` inside nested records, or DecodeError naming the missing field."""
    value: Any = record
    for depth, key in enumerate(path):
        if not isinstance(value, dict) or value.get(key) is None:
            raise DecodeError(f"missing required field {'.'.join(path[: depth + 1])}")
        value = value[key]
    return value


def as_float(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise DecodeError(f"field {name} is a boolean, not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"field {name} is not a number: {value!r}") from exc
    if not math.isfinite(number):
        raise DecodeError(f"field {name} is not finite: {value!r}")
    return number


def in_range(value: Any, name: str, low: float, high: float, high_open: bool = False) -> float:
    """A finite number within [low, high] (or [low, high)); DecodeError saying which bound it breaks."""
    number = as_float(value, name)
    if not low <= number <= high or (high_open and number == high):
        raise DecodeError(f"{name} {number!r} out of range [{low:g}, {high:g}{')' if high_open else ']'}")
    return number


def position(ra: Any, dec: Any, ra_name: str = "ra", dec_name: str = "dec") -> tuple[float, float]:
    """ICRS degrees, checked: both given, numbers (not booleans), finite, ra in [0, 360), dec in [-90, 90]."""
    if ra is None or dec is None:
        missing = ra_name if ra is None else dec_name
        raise DecodeError(f"position incomplete: {missing} is missing ({ra_name} and {dec_name} go together)")
    return in_range(ra, ra_name, 0.0, 360.0, high_open=True), in_range(dec, dec_name, -90.0, 90.0)


# What every supported store holds (store/hot.py's column sizes): longer ids and names cannot be stored.
TEXT_LIMITS = {"event_id": 256, "object_id": 128, "kind": 64, "band": 16, "raw_format": 64, "schema_version": 256}
MAX_REASON_CHARS = 2000
_OBJECT_AT = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")  # library messages naming a buffer's address


def text_problem(value: str, name: str, max_chars: int | None = None) -> str | None:
    """Why a string cannot be stored everywhere (too long, a NUL, a lone surrogate), or None."""
    if _plainly_storable(value, max_chars if max_chars is not None else len(value)):
        return None  # no lone surrogate is ASCII
    if max_chars is not None and len(value) > max_chars:
        return f"{name} is {len(value)} characters: the store holds at most {max_chars}"
    if "\x00" in value:
        return f"{name} holds a NUL character at {value.index(chr(0))}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{name} holds a lone surrogate {value[exc.start]!r} at {exc.start}: not valid Unicode text"
    return None


def storable(event: Any) -> str | None:
    """Why an event cannot be written to every supported store (SQLite, PostgreSQL, Parquet, Avro), or None."""
    for name, max_chars in TEXT_LIMITS.items():
        value = getattr(event, name, None)
        if isinstance(value, str):
            problem = text_problem(value, name, max_chars)
            if problem:
                return f"{event.event_id[:64]!r}: {problem}" if name != "event_id" else problem
    for group in ("quality", "features"):
        for key, value in (getattr(event, group, None) or {}).items():
            for part, label in ((key, "key"), (value, "value")):
                if isinstance(part, str) and not _plainly_storable(part, 4096):
                    name = f"{group} key" if label == "key" else f"{group}.{key}"
                    problem = text_problem(part, name[:80], 4096)
                    if problem:
                        return f"{event.event_id[:64]!r}: {problem}"
    return None


def _plainly_storable(value: str, max_chars: int) -> bool:
    """The common case, decided in C without building a message: short ASCII text with no NUL."""
    return len(value) <= max_chars and value.isascii() and "\x00" not in value


def safe_reason(reason: str) -> str:
    """A dead-letter reason every store can hold: NULs and lone surrogates escaped, one bounded line."""
    text = reason.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    text = _OBJECT_AT.sub("the data", " ".join(text.splitlines()))
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)
JD_MINUS_MJD = 2_400_000.5


@lru_cache(maxsize=4096)
def tai_minus_utc_seconds(day: date) -> float:
    """TAI - UTC on a UTC date, from ERFA's leap-second table (the library under astropy.time)."""
    import erfa

    with warnings.catch_warnings():
        # Past the table's end ERFA warns of a "dubious year" and keeps the last value, which is what we want.
        warnings.simplefilter("ignore")
        return float(erfa.dat(day.year, day.month, day.day, 0.0))


# The conversions below are arithmetic on ERFA's leap-second table rather than astropy's `Time`: they run for
# every packet, and `Time(...).utc.to_datetime()` took ~1.2 ms a call here against 6-9 us for these (a decode
# is ~34-213 us in all). tests/test_decoders.py checks them against astropy's `Time`, leap-second days included.
def jd_utc_to_datetime(jd: float) -> datetime:
    """A Julian date on the UTC scale (ZTF `jd`) as an aware UTC datetime."""
    jd = as_float(jd, "jd")
    if not 2_400_000.0 < jd < 2_600_000.0:
        raise DecodeError(f"impossible Julian date {jd}")
    # A UTC day holding a leap second lasts 86401 s, and a UTC Julian date spreads its fraction over all of it.
    mjd = jd - JD_MINUS_MJD
    whole_days = math.floor(mjd)
    midnight = MJD_EPOCH + timedelta(days=whole_days)
    day = midnight.date()
    length = 86400.0 + tai_minus_utc_seconds(day + timedelta(days=1)) - tai_minus_utc_seconds(day)
    seconds = (mjd - whole_days) * length
    return midnight + timedelta(seconds=min(seconds, 86399.999999))  # 23:59:60.x has no datetime


def mjd_tai_to_datetime(mjd: float) -> datetime:
    """A modified Julian date on the TAI scale (Rubin `midpointMjdTai`) as an aware UTC datetime.

    TAI runs ahead of UTC by the leap seconds to date (37 s since 2017); within a minute of a leap second
    the offset of the day before is used, as close as a datetime can get.
    """
    mjd = as_float(mjd, "midpointMjdTai")
    if not 0.0 < mjd < 100_000.0:
        raise DecodeError(f"impossible MJD {mjd}")
    tai = MJD_EPOCH + timedelta(days=mjd)
    return tai - timedelta(seconds=tai_minus_utc_seconds(tai.date()))


def datetime_to_mjd(moment: datetime) -> float:
    return (moment - MJD_EPOCH).total_seconds() / 86400.0


def parse_iso_utc(text: Any, name: str) -> datetime:
    """An ISO 8601 time (with or without zone; GCN times without a zone are UTC) as aware UTC."""
    if not isinstance(text, str) or not text.strip():
        raise DecodeError(f"field {name} is not a time: {text!r}")
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise DecodeError(f"field {name} is not an ISO time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def flux_njy_to_mag(flux: Any, flux_err: Any) -> tuple[float | None, float | None]:
    """AB magnitude and its error from a flux in nJy; None for non-positive or missing flux."""
    flux, flux_err = clean(flux), clean(flux_err)
    if flux is None or not math.isfinite(flux) or flux <= 0:
        return None, None
    mag = NJY_ZERO_POINT - 2.5 * math.log10(flux)
    err = None
    if flux_err is not None and math.isfinite(flux_err) and flux_err >= 0:
        err = 2.5 / math.log(10) * flux_err / flux
    return mag, err


def rise_rate(points: list[tuple[float, float]], now_day: float, now_mag: float | None) -> float | None:
    """Brightening rate in mag/day from the latest earlier point: positive means rising.

    `points` are (day, mag) pairs of earlier detections in the same band.
    """
    if now_mag is None:
        return None
    earlier = [(day, mag) for day, mag in points if mag is not None and day < now_day - 1e-6]
    if not earlier:
        return None
    day, mag = max(earlier)
    return (mag - now_mag) / (now_day - day)


def validation_reason(exc: ValueError) -> str:
    """The first problem pydantic found, as one readable line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)
