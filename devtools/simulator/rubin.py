"""Rubin packets: ``lsst.vX_Y.alert`` records (schema from the installed lsst-alert-packet, default v9.0, any
available version >= 7.0) either as an Avro container file or in the Confluent wire format (0x00, 4-byte
big-endian schema id = major*100+minor, schemaless Avro).

Designs (psfFlux in nJy, mag = 31.4 - 2.5 log10(psfFlux); history from prvDiaSources, never star-like):
  rejected     reliability <= 0.5, pixelFlags_bad, pixelFlags_saturatedCenter or isDipole
               (isDipole only where the schema has it, i.e. >= v8). Passing packets have
               reliability >= 0.62, positive flux and every flag False.
  significant  mag <= 18.0, and no prvDiaSources or rising (as ZTF, in the same band).
  interesting  mag 18.8..20.2, a few prvDiaSources, the first 4..9 days ago.
  routine      mag > 20.9, or prvDiaSources going back > 40 days.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from devtools.simulator.avro import container, schemaless
from devtools.simulator.common import (
    TAI_MINUS_UTC_S,
    UNIX_EPOCH_MJD,
    draw,
    fits_stamp,
    mjd_tai,
    new_or_rising,
    random_sky,
    routine_optical,
)
from devtools.simulator.packet import UTC, State
from devtools.simulator.schema import Blank, put, rubin_blank, rubin_schema_cached

# Class design weights (the "bad" share is set by bad_fraction on top).
RUBIN_CLASS_WEIGHTS: dict[str, float] = {
    "significant": 0.03,
    "interesting": 0.08,
    "routine": 0.69,
    "rejected": 0.20,
}
_NJY_ZEROPOINT = 31.4


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
        d.update(new_or_rising(rng), mag=u(16.8, 18.0), rel=u(0.9, 1.0))
    elif cls == "interesting":
        d.update(mag=u(18.8, 20.2), ndet=rng.randint(2, 10), age=u(4.0, 9.0), rel=u(0.8, 1.0))
    elif cls in ("routine", "rejected"):
        d.update(routine_optical(rng, faintest=24.3, max_ndet=400, max_age=300.0))
        if cls == "rejected":
            reasons = dict(_RUBIN_REJECT_REASONS)
            if not has_dipole:
                reasons.pop("isDipole")
            reason = draw(rng, reasons)
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
    st: State,
    blank: Blank,
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
    mid = mjd_tai(t)
    processed = mid + u(60.0, 150.0) / 86400.0
    x, y = u(10.0, 4062.0), u(10.0, 3990.0)
    put(
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
        time_processed=datetime.fromtimestamp((processed - UNIX_EPOCH_MJD) * 86400.0 - TAI_MINUS_UTC_S, UTC),
        bboxSize=rng.randint(13, 45),
    )
    if dipole:
        put(
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
        put(rec, **{flag: True, "pixelFlags": True})
        if flag == "pixelFlags_saturatedCenter":
            put(rec, pixelFlags_saturated=True)
    return rec


def _rubin_record(st: State, cls: str, t: datetime) -> dict[str, Any]:
    rng = st.rng
    u = rng.uniform
    major, minor = st.rubin_major, st.rubin_minor
    blank = rubin_blank(major, minor)
    ns = f"lsst.v{major}_{minor}"
    src_name, obj_name, forced_name = f"{ns}.diaSource", f"{ns}.diaObject", f"{ns}.diaForcedSource"
    has_dipole = blank.has_field(src_name, "isDipole")
    d = _rubin_design(rng, cls, has_dipole)
    band = draw(rng, _RUBIN_BANDS)
    mag = min(d["mag"], _RUBIN_M5[band] - u(0.05, 0.4))
    ra, dec = random_sky(rng, -90.0, 10.0)
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
    mid = mjd_tai(t)
    # earlier detections: the first `span` days ago; a rising design's are all fainter, same band
    prv = []
    for k in range(min(nsrc - 1, 4)):
        pt = t - timedelta(days=span if k == 0 else u(0.01, 1.0) * span)
        pband = band if d["rising"] else draw(rng, _RUBIN_BANDS)
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
        fband = draw(rng, _RUBIN_BANDS)
        ferr = _flux(_RUBIN_M5[fband]) / 5.0
        fflux = rng.gauss(0.0, ferr)
        put(
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
            midpointMjdTai=mjd_tai(ft),
            scienceFlux=template_flux + fflux,
            scienceFluxErr=ferr,
            band=fband,
            timeProcessedMjdTai=mjd_tai(ft) + 0.001,
            time_processed=ft + timedelta(minutes=2),
        )
        forced.append(rec)
    forced.sort(key=lambda r: r["midpointMjdTai"])

    obj = blank.new(obj_name)
    flux = source["psfFlux"]
    put(
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
    put(
        alert,
        diaSourceId=source_id,
        alertId=source_id,
        diaSource=source,
        prvDiaSources=prv or None,
        prvDiaForcedSources=forced,
        diaObject=obj,
        cutoutDifference=fits_stamp(rng, peak),
        cutoutScience=fits_stamp(rng, peak + template_flux / 50.0, sky=10.0),
        cutoutTemplate=fits_stamp(rng, template_flux / 50.0, sky=10.0),
    )
    return alert


def rubin_packet(st: State, cls: str, t: datetime, wire: str) -> tuple[bytes, str, dict]:
    major, minor = st.rubin_major, st.rubin_minor
    schema = rubin_schema_cached(major, minor)
    record = _rubin_record(st, cls, t)
    source_id = record["diaSource"]["diaSourceId"]
    if wire == "confluent":
        header = b"\x00" + struct.pack(">I", major * 100 + minor)
        payload = header + schemaless(schema, record)
        meta = {"wire": wire, "record": record, "schema": schema}
        return payload, f"rubin_{source_id}.confluent", meta
    payload = container(schema, record, st.rng)
    meta = {"wire": wire, "record": record, "schema": schema}
    return payload, f"rubin_{source_id}.avro", meta
