"""GCN unified JSON notices: Fermi GBM, Swift BAT-GUANO, Einstein Probe WXT, IceCube and SVOM ECLAIRs."""

from __future__ import annotations

import string
from datetime import datetime, timedelta
from typing import Any

from devtools.simulator.common import fermi_ids, galactic, iso_time, mission_seconds, random_sky, trigger_second
from devtools.simulator.packet import State

_GCN_SCHEMA = "https://gcn.nasa.gov/schema/main/gcn/notices"


def fermi_json(st: State, t: datetime, err: float, *, tense: str = "current", record_number: int = 0) -> dict:
    rng = st.rng
    u = rng.uniform
    trigger = trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(8.0, 600.0))
    trigid, bn = fermi_ids(trigger)
    ra, dec = random_sky(rng, -90.0, 90.0)
    gl, gb = galactic(ra, dec)
    record_number = record_number or rng.choice((2, 3, 4))
    subtype = {2: "FLIGHT_POSITION", 3: "GROUND_POSITION", 4: "FINAL_POSITION"}[record_number]
    archive = f"http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/{trigger:%Y}/{bn}"
    grb = u(0.75, 0.99)
    return {
        "$schema": f"{_GCN_SCHEMA}/fermi/gbm/trigger.schema.json",
        "mission": "Fermi",
        "instrument": "GBM",
        "messenger": "EM",
        "alert_datetime": iso_time(sent, 0),
        "alert_tense": tense,
        "alert_type": "update",
        "record_number": record_number,
        "subtype": subtype,
        "trigger_time": iso_time(trigger, 2),
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


def swift_json(st: State, t: datetime, err: float, *, retraction: bool = False, tense: str = "current") -> dict:
    rng = st.rng
    u = rng.uniform
    trigger = trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(300.0, 1800.0))
    trigid = str(int(mission_seconds(trigger)) + 25)
    fermi = int(mission_seconds(trigger) - u(0.0, 30.0))
    notice: dict[str, Any] = {
        "$schema": f"{_GCN_SCHEMA}/swift/bat/Guano.schema.json",
        "mission": "Swift",
        "instrument": "BAT-GUANO",
        "messenger": "EM",
        "record_number": rng.randint(2, 4) if retraction else rng.randint(1, 3),
        "alert_datetime": iso_time(sent, 1),
        "alert_tense": tense,
        "alert_type": "retraction" if retraction else "update",
        "trigger_time": iso_time(trigger, 2),
        "follow_up_event": f"Fermi {fermi}",
        "follow_up_type": "GRB",
        "data_archive_page": f"https://guano.swift.psu.edu/trigger_report?id={trigid}",
        "id": [trigid],
    }
    if not retraction:
        ra, dec = random_sky(rng, -90.0, 90.0)
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


def ep_json(st: State, t: datetime, err: float) -> dict:
    rng = st.rng
    trigger = trigger_second(st, t)
    sent = trigger + timedelta(seconds=rng.uniform(120.0, 900.0))
    ra, dec = random_sky(rng, -90.0, 90.0)
    return {
        "$schema": f"{_GCN_SCHEMA}/einstein_probe/wxt/alert.schema.json",
        "mission": "Einstein Probe",
        "instrument": "WXT",
        "messenger": "EM",
        "alert_datetime": iso_time(sent, 0),
        "alert_tense": "current",
        "alert_type": "initial",
        "record_number": 1,
        "trigger_time": iso_time(trigger, 2),
        "id": [f"0{int(trigger.timestamp())}"],
        "ra": round(ra, 4),
        "dec": round(dec, 4),
        "ra_dec_error": round(err, 4),
        "image_energy_range": [0.5, 4],
        "net_count_rate": round(rng.uniform(0.05, 20.0), 3),
        "image_snr": round(rng.uniform(7.0, 40.0), 2),
        "additional_info": "Fast X-ray transient detected by WXT.",
    }


def icecube_json(st: State, t: datetime, err: float, *, retraction: bool = False) -> dict:
    rng = st.rng
    u = rng.uniform
    trigger = trigger_second(st, t)
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
        "alert_datetime": iso_time(sent, 1),
        "alert_type": "retraction" if retraction else "initial",
        "alert_tense": "current",
        "trigger_time": iso_time(trigger, 6),
    }
    if not retraction:
        ra, dec = random_sky(rng, -90.0, 90.0)
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


def svom_json(st: State, t: datetime, err: float, *, tense: str = "current") -> dict:
    rng = st.rng
    trigger = trigger_second(st, t)
    sent = trigger + timedelta(seconds=rng.uniform(15.0, 120.0))
    ra, dec = random_sky(rng, -90.0, 90.0)
    return {
        "$schema": f"{_GCN_SCHEMA}/svom/trigger.schema.json",
        "mission": "SVOM",
        "instrument": "ECLAIRs",
        "messenger": "EM",
        "alert_datetime": iso_time(sent, 0),
        "alert_tense": tense,
        "alert_type": rng.choice(("initial", "update")),
        "record_number": 1,
        "id": [f"sb{trigger:%y%m%d}{st.next_serial() % 100:02d}"],
        "trigger_time": iso_time(trigger, 6),
        "ra": round(ra, 4),
        "dec": round(dec, 4),
        "ra_dec_error": round(err, 3),
        "image_snr": round(rng.uniform(7.0, 30.0), 2),
        "image_duration": rng.choice((0, 20, 40, 80)),
        "image_energy_range": [4, 20],
        "trigger_type": "rate",
        "slew_status": rng.choice(("accepted", "not_requested")),
    }
