"""ZTF alert records (schema `ztf.alert` v3.x and v4.x) to events."""

from __future__ import annotations

from typing import Any

from core.decoders.common import (
    DecodeError,
    as_float,
    clean,
    jd_utc_to_datetime,
    require,
    rise_rate,
    validation_reason,
)
from core.decoders.lightcurve import ztf_points
from core.event import Event, Packet

FILTERS = {1: "g", 2: "r", 3: "i"}
# A PS1 counterpart this close and this star-like makes the candidate a variable star, not a transient.
STAR_DISTANCE_ARCSEC = 1.5
STAR_SCORE = 0.5


def is_ztf_schema(schema: dict[str, Any]) -> bool:
    return any(field.get("name") == "candidate" for field in schema.get("fields", []))


def decode_ztf(record: dict[str, Any], *, raw: bytes, packet: Packet, schema_version: str | None) -> Event:
    candid = require(record, "candid")
    candidate = require(record, "candidate")
    jd = as_float(require(record, "candidate", "jd"), "candidate.jd")
    ra = as_float(require(record, "candidate", "ra"), "candidate.ra")
    dec = as_float(require(record, "candidate", "dec"), "candidate.dec")
    fid = candidate.get("fid")
    mag = clean(candidate.get("magpsf"))
    magdiff = clean(candidate.get("magdiff"))
    isdiffpos = candidate.get("isdiffpos")

    quality = {
        "rb": clean(candidate.get("rb")),
        "drb": clean(candidate.get("drb")),
        "nbad": clean(candidate.get("nbad")),
        "fwhm": clean(candidate.get("fwhm")),
        "elong": clean(candidate.get("elong")),
        "magdiff": magdiff,
        "abs_magdiff": abs(magdiff) if magdiff is not None else None,
        "isdiffpos": None if isdiffpos is None else str(isdiffpos).lower() in ("t", "1", "true"),
        "ssdistnr": clean(candidate.get("ssdistnr")),
        "ssmagnr": clean(candidate.get("ssmagnr")),
        "ssnamenr": clean(candidate.get("ssnamenr")),
        "sgscore1": clean(candidate.get("sgscore1")),
        "distpsnr1": clean(candidate.get("distpsnr1")),
        "programid": candidate.get("programid"),
        "has_cutouts": record.get("cutoutScience") is not None,
    }

    history = [
        (prv.get("jd"), clean(prv.get("magpsf")))
        for prv in record.get("prv_candidates") or []
        if prv.get("fid") == fid and prv.get("jd") is not None
    ]
    prior_detections = [point for point in history if point[1] is not None]
    jd_first = clean(candidate.get("jdstarthist"))
    if jd_first is None and prior_detections:
        jd_first = min(day for day, _ in prior_detections)
    days_since_first = max(0.0, jd - jd_first) if jd_first is not None else 0.0
    ndethist = clean(candidate.get("ndethist"))
    n_prior = int(ndethist) - 1 if ndethist is not None else len(prior_detections)
    rate = rise_rate(prior_detections, jd, mag)
    sgscore, distance = quality["sgscore1"], quality["distpsnr1"]
    try:
        lightcurve = ztf_points(record)
    except DecodeError as exc:  # a history that cannot be read sends the packet to the dead letters, whole
        raise DecodeError(f"ZTF candid {candid}: bad history: {exc}") from exc

    features = {
        "n_prior": max(0, n_prior),
        "days_since_first": days_since_first,
        "rise_rate_mag_per_day": rate,
        "rising_or_new": (rate is not None and rate >= 0.3) or max(0, n_prior) == 0,
        "star_like": bool(
            sgscore is not None and distance is not None and sgscore >= STAR_SCORE and distance <= STAR_DISTANCE_ARCSEC
        ),
    }

    try:
        return Event(
            event_id=f"ztf:{candid}",
            source="ztf",
            kind="optical_transient",
            object_id=record.get("objectId"),
            event_time=jd_utc_to_datetime(jd),
            received_time=packet.received_time,
            published_time=packet.published_time,
            ra=ra,
            dec=dec,
            mag=mag,
            mag_err=clean(candidate.get("sigmapsf")),
            band=FILTERS.get(fid, str(fid)),
            quality=quality,
            features=features,
            lightcurve=lightcurve,
            raw=raw,
            raw_format="ztf-avro",
            schema_version=schema_version or record.get("schemavsn"),
            injected=packet.injected,
            origin=packet.origin,
        )
    except ValueError as exc:
        raise DecodeError(f"ZTF candid {candid}: {validation_reason(exc)}") from exc
