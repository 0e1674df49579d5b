"""ZTF packets: an Avro object container file holding one ``ztf.alert`` v4.02 record, with prv_candidates,
fp_hists and small gzip'd FITS cutouts.

Designs (days since first = jd - jdstarthist, star-like = sgscore1 >= 0.5 and distpsnr1 <= 1.5):
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
"""

from __future__ import annotations

import math
import random
import string
from datetime import date, datetime
from typing import Any

from devtools.simulator.avro import container
from devtools.simulator.common import draw, fits_stamp, from_jd, gzip_bytes, julian_date, new_or_rising, routine_optical
from devtools.simulator.packet import State
from devtools.simulator.schema import ZTF_SCHEMA_VERSION, put, ztf_blank, ztf_schema

# Class design weights (the "bad" share is set by bad_fraction on top).
ZTF_CLASS_WEIGHTS: dict[str, float] = {
    "significant": 0.03,
    "interesting": 0.07,
    "routine": 0.72,
    "rejected": 0.18,
}
_ZTF_NID_EPOCH = date(2017, 1, 1)
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
        d.update(new_or_rising(rng), mag=u(14.5, 18.0), rb=u(0.8, 0.99), drb=u(0.95, 1.0))
    elif cls == "interesting":
        d.update(mag=u(18.8, 20.2), ndet=rng.randint(2, 10), age=u(4.0, 9.0))
    elif cls in ("routine", "rejected"):
        d.update(routine_optical(rng, faintest=21.4, max_ndet=1500, max_age=2500.0))
        if cls == "rejected":
            if rng.random() < 0.25:  # a bright new candidate that fails the cuts
                d.update(new_or_rising(rng), mag=u(15.0, 18.0), star=False)
            reasons = {draw(rng, _ZTF_REJECT_REASONS)}
            if rng.random() < 0.2:
                reasons.add(draw(rng, _ZTF_REJECT_REASONS))
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


def _provisional(rng: random.Random) -> str:
    year = rng.randint(1995, 2024)
    letters = rng.choice(string.ascii_uppercase) + rng.choice(string.ascii_uppercase)
    return f"{year}{letters}{rng.randint(1, 199)}"


def _ztf_object_id(rng: random.Random, year: int) -> str:
    return f"ZTF{year % 100:02d}" + "".join(rng.choices(string.ascii_lowercase, k=7))


def _ztf_exposure(rng: random.Random, jd: float, fid: int, field_id: int, rcid: int) -> dict:
    t = from_jd(jd)
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
    put(rec, **values)


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


def _ztf_record(st: State, cls: str, t: datetime) -> dict[str, Any]:
    rng = st.rng
    u = rng.uniform
    blank = ztf_blank()
    d = _ztf_design(rng, cls)
    jd = julian_date(t)
    fid = int(draw(rng, _ZTF_FILTER_WEIGHTS))
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
    put(
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
            put(rec, **pexp)
            rec["diffmaglim"] = max(pexp["diffmaglim"], d["mag"] + u(0.2, 1.0))
        prv.append(rec)

    fp_hists = []
    for _ in range(rng.randint(0, 3)):
        pjd = jd - u(1.0, 30.0)
        pfid = rng.choice((1, 2))
        pexp = _ztf_exposure(rng, pjd, pfid, field_id, rcid)
        rec = blank.new("ztf.alert.fp_hist")
        put(
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
            "stampData": gzip_bytes(fits_stamp(rng, amp, sky=100.0 if label != "diff" else 0.0)),
        }
    year = from_jd(obj["jdstarthist"]).year
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


def ztf_packet(st: State, cls: str, t: datetime) -> tuple[bytes, str, dict]:
    record = _ztf_record(st, cls, t)
    payload = container(ztf_schema(), record, st.rng)
    return (
        payload,
        f"ztf_{record['candid']}.avro",
        {
            "wire": "container",
            "record": record,
            "schema": ztf_schema(),
        },
    )
