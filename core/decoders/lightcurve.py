"""An object's light curve from a packet's own history: detections, non-detections and forced photometry.

ZTF packets carry the candidate and up to 30 days of `prv_candidates` (a detection when it has a `candid`, an upper
limit `diffmaglim` when it has none) and, from schema v4, forced photometry (`fp_hists`); Rubin packets carry the
`diaSource`, `prvDiaSources` (detections), `prvDiaForcedSources` (forced photometry) and, in v7,
`prvDiaNondetectionLimits` (Fink's re-written packets may name them `diaSourcesHistory` and
`diaForcedSourcesHistory`). Every point gets one time scale: `mjd` is the modified Julian date in UTC and `time`
the same instant as an ISO 8601 UTC string with Z (ZTF's `jd` is UTC, Rubin's `midpointMjdTai` is TAI and
converted). A point that cannot be read (an impossible time, a non-number where a number belongs) is a
`DecodeError` naming where it is: the packet goes to the dead letters, never half a light curve.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.decoders.common import (
    NJY_ZERO_POINT,
    DecodeError,
    as_float,
    clean,
    datetime_to_mjd,
    flux_njy_to_mag,
    jd_utc_to_datetime,
    mjd_tai_to_datetime,
)

DETECTION, NONDETECTION, FORCED = "detection", "nondetection", "forced"
KINDS = (DETECTION, NONDETECTION, FORCED)
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
# A forced measurement counts as a measured magnitude at this signal-to-noise; below it, as a 5-sigma limit.
FORCED_SNR = 3.0
LIMIT_SIGMA = 5.0
# More points than a packet can plausibly carry (30 days of ZTF history is ~100): a hostile packet, not a history.
MAX_POINTS = 20_000
# The fields a point has, in order (the hot store's columns and the warm tier's JSON use these names).
POINT_FIELDS = ("point_id", "kind", "mjd", "time", "band", "mag", "mag_err", "limit_mag", "flux", "flux_err")


def iso_z(moment: datetime) -> str:
    """The one time format of answers: ISO 8601 in UTC with Z."""
    return moment.isoformat().replace("+00:00", "Z")


def _number(value: Any, where: str) -> float | None:
    """None for a missing value or a survey sentinel; a finite float; DecodeError otherwise."""
    value = clean(value)
    if value is None:
        return None
    number = as_float(value, where)
    return number


def _point(point_id: str, kind: str, moment: datetime, band: Any, **values: float | None) -> dict[str, Any]:
    return {
        "point_id": point_id,
        "kind": kind,
        "mjd": round(datetime_to_mjd(moment), 8),
        "time": iso_z(moment),
        "band": None if band is None else str(band)[:16],
        **{name: values.get(name) for name in ("mag", "mag_err", "limit_mag", "flux", "flux_err")},
    }


def _ztf_band(fid: Any) -> str:
    return ZTF_BANDS.get(fid, str(fid))


def _ztf_time(entry: dict[str, Any], where: str) -> tuple[float, datetime]:
    jd = as_float(clean(entry.get("jd")), f"{where}.jd")
    try:
        return jd, jd_utc_to_datetime(jd)
    except DecodeError as exc:
        raise DecodeError(f"{where}.jd: {exc}") from exc


def ztf_points(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidate and every point of a ZTF alert's history; DecodeError naming the entry that cannot be read."""
    candidate = record.get("candidate") or {}
    points = [_ztf_detection(candidate, "candidate")]
    for index, entry in enumerate(_entries(record, "prv_candidates")):
        where = f"prv_candidates[{index}]"
        if clean(entry.get("candid")) is not None and clean(entry.get("magpsf")) is not None:
            points.append(_ztf_detection(entry, where))
        else:
            jd, moment = _ztf_time(entry, where)
            limit = _number(entry.get("diffmaglim"), f"{where}.diffmaglim")
            band = _ztf_band(entry.get("fid"))
            points.append(_point(f"nd:{jd:.7f}:{entry.get('fid')}", NONDETECTION, moment, band, limit_mag=limit))
    for index, entry in enumerate(_entries(record, "fp_hists")):
        points.append(_ztf_forced(entry, f"fp_hists[{index}]"))
    return _checked(points)


def _ztf_detection(entry: dict[str, Any], where: str) -> dict[str, Any]:
    _, moment = _ztf_time(entry, where)
    return _point(
        str(entry.get("candid")),
        DETECTION,
        moment,
        _ztf_band(entry.get("fid")),
        mag=_number(entry.get("magpsf"), f"{where}.magpsf"),
        mag_err=_number(entry.get("sigmapsf"), f"{where}.sigmapsf"),
        limit_mag=_number(entry.get("diffmaglim"), f"{where}.diffmaglim"),
    )


def _ztf_forced(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """ZTF forced photometry: difference-image flux in DN with the science zero point (the ZTF forced-photometry
    guide's recipe: a magnitude at SNR >= 3, else a 5-sigma upper limit)."""
    jd, moment = _ztf_time(entry, where)
    flux = _number(entry.get("forcediffimflux"), f"{where}.forcediffimflux")
    error = _number(entry.get("forcediffimfluxunc"), f"{where}.forcediffimfluxunc")
    zero_point = _number(entry.get("magzpsci"), f"{where}.magzpsci")
    if flux is not None and flux <= -99_999:  # ZTF's "no measurement" for forced photometry
        flux = error = None
    mag = mag_err = limit = None
    if zero_point is not None and error is not None and error > 0:
        if flux is not None and flux / error >= FORCED_SNR:
            mag = zero_point - 2.5 * math.log10(flux)
            mag_err = 2.5 / math.log(10) * error / flux
        else:
            limit = zero_point - 2.5 * math.log10(LIMIT_SIGMA * error)
    point_id = f"fp:{jd:.7f}:{entry.get('fid')}:{entry.get('field')}:{entry.get('rcid')}"
    return _point(
        point_id,
        FORCED,
        moment,
        _ztf_band(entry.get("fid")),
        mag=mag,
        mag_err=mag_err,
        limit_mag=limit,
        flux=flux,
        flux_err=error,
    )


def _rubin_time(entry: dict[str, Any], where: str) -> datetime:
    mjd = as_float(clean(entry.get("midpointMjdTai")), f"{where}.midpointMjdTai")
    try:
        return mjd_tai_to_datetime(mjd)
    except DecodeError as exc:
        raise DecodeError(f"{where}.midpointMjdTai: {exc}") from exc


def _rubin_band(entry: dict[str, Any]) -> Any:
    return entry.get("band") or entry.get("filterName")


def _rubin_flux(entry: dict[str, Any], where: str, kind: str, point_id: str) -> dict[str, Any]:
    flux = _number(entry.get("psfFlux"), f"{where}.psfFlux")
    error = _number(entry.get("psfFluxErr"), f"{where}.psfFluxErr")
    mag, mag_err = flux_njy_to_mag(flux, error)
    limit = None
    if kind == FORCED and (flux is None or error is None or error <= 0 or flux / error < FORCED_SNR):
        mag = mag_err = None
        if error is not None and error > 0:
            limit = NJY_ZERO_POINT - 2.5 * math.log10(LIMIT_SIGMA * error)
    return _point(
        point_id,
        kind,
        _rubin_time(entry, where),
        _rubin_band(entry),
        mag=mag,
        mag_err=mag_err,
        limit_mag=limit,
        flux=flux,
        flux_err=error,
    )


def rubin_points(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The diaSource and every point of a Rubin alert's history (fluxes in nJy, AB magnitudes)."""
    source = record.get("diaSource") or {}
    points = [_rubin_flux(source, "diaSource", DETECTION, str(source.get("diaSourceId")))]
    for name in ("prvDiaSources", "diaSourcesHistory"):
        for index, entry in enumerate(_entries(record, name)):
            points.append(_rubin_flux(entry, f"{name}[{index}]", DETECTION, str(entry.get("diaSourceId"))))
    for name in ("prvDiaForcedSources", "diaForcedSourcesHistory"):
        for index, entry in enumerate(_entries(record, name)):
            point_id = f"fs:{entry.get('diaForcedSourceId')}"
            points.append(_rubin_flux(entry, f"{name}[{index}]", FORCED, point_id))
    for index, entry in enumerate(_entries(record, "prvDiaNondetectionLimits")):
        where = f"prvDiaNondetectionLimits[{index}]"
        moment = _rubin_time(entry, where)
        noise = _number(entry.get("diaNoise"), f"{where}.diaNoise")
        limit = NJY_ZERO_POINT - 2.5 * math.log10(LIMIT_SIGMA * noise) if noise and noise > 0 else None
        points.append(
            _point(f"nd:{entry.get('ccdVisitId')}", NONDETECTION, moment, _rubin_band(entry), limit_mag=limit)
        )
    return _checked(points)


def _entries(record: dict[str, Any], name: str) -> Iterable[dict[str, Any]]:
    entries = record.get(name)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise DecodeError(f"{name} is not a list: {type(entries).__name__}")
    if len(entries) > MAX_POINTS:
        raise DecodeError(f"{name} holds {len(entries)} entries: more than the {MAX_POINTS} a light curve may have")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DecodeError(f"{name}[{index}] is not a record: {type(entry).__name__}")
    return entries


def _checked(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per id (a packet may repeat one), oldest first."""
    unique = {point["point_id"]: point for point in points}
    return sorted(unique.values(), key=lambda point: (point["mjd"], point["point_id"]))
