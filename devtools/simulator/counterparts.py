"""Designed multi-messenger cases: a well-localised trigger with a real optical counterpart, and chance
coincidences that must not raise anything (the association's injection test, and a few in a simulated night).

Each case is a list of packets with what the association should make of it (`expect`):
  counterpart  a Swift BAT-GUANO GRB (error ~0.05 deg) and, 5..30 min later, a ZTF source first detected then
               (ndethist 1) inside the error circle: linked, and both raised (chance probability ~1e-5).
  old_source   the same kind of trigger with a ZTF variable known for weeks inside its circle: not linked.
  chance       a Fermi GBM GRB (error 10 deg) with a new ZTF source inside: linked, not raised (a chance
               coincidence in 300 square degrees is likely).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from devtools.simulator.avro import container
from devtools.simulator.common import random_sky
from devtools.simulator.gcn_json import fermi_json, swift_json
from devtools.simulator.packet import SimulatedPacket, State
from devtools.simulator.schema import ztf_schema
from devtools.simulator.ztf import _ztf_record

CASES = ("counterpart", "old_source", "chance")


@dataclass(frozen=True)
class DesignedCase:
    kind: str  # one of CASES
    trigger: SimulatedPacket
    optical: SimulatedPacket
    linked: bool  # the association should store a link between them
    raised: bool  # ...and raise both classes


def _placed_ztf(st: State, cls: str, t: datetime, ra: float, dec: float, first_detection: bool) -> SimulatedPacket:
    """A ZTF packet designed as `cls`, moved to (ra, dec); a first detection (ndethist 1) if asked."""
    for _ in range(200):
        record = _ztf_record(st, cls, t)
        if not first_detection or record["candidate"]["ndethist"] == 1:
            break
    else:
        raise RuntimeError("no first-detection design drawn")
    record["candidate"]["ra"], record["candidate"]["dec"] = ra, dec
    for prv in record.get("prv_candidates") or []:
        if prv.get("ra") is not None:
            prv["ra"], prv["dec"] = ra, dec
    payload = container(ztf_schema(), record, st.rng)
    return SimulatedPacket("ztf", payload, f"ztf_{record['candidate']['candid']}.avro", cls, t)


def _trigger(st: State, t: datetime, wide: bool, ra: float, dec: float) -> SimulatedPacket:
    if wide:
        notice, cls, slug = fermi_json(st, t, 10.0, record_number=2), "significant", "fermi-gbm"
    else:
        notice, cls, slug = swift_json(st, t, 0.05), "critical", "swift-bat-guano"
    notice["ra"], notice["dec"] = round(ra, 3), round(dec, 3)
    name = f"gcn_{slug}_{notice['id'][0]}_{st.next_serial():06d}.json"
    return SimulatedPacket("gcn", json.dumps(notice, indent=2).encode(), name, cls, t)


def designed_case(st: State, kind: str, t: datetime) -> DesignedCase:
    """One case of `kind` whose trigger is at about `t` (its optical packet 5..30 min later)."""
    if kind not in CASES:
        raise ValueError(f"unknown association case {kind!r}; known: {', '.join(CASES)}")
    rng = st.rng
    ra, dec = random_sky(rng, -30.0, 60.0)  # where ZTF looks
    trigger = _trigger(st, t, kind == "chance", ra, dec)
    later = t + timedelta(seconds=rng.uniform(300.0, 1800.0))
    # Inside the error circle: 0.01 deg from a Swift position (0.05 deg), 2 deg from a Fermi one (10 deg).
    offset = 2.0 if kind == "chance" else 0.01
    near_dec = max(-89.0, min(89.0, dec + offset))
    if kind == "old_source":
        optical = _placed_ztf(st, "routine", later, ra, near_dec, first_detection=False)
    else:
        optical = _placed_ztf(st, "significant", later, ra, near_dec, first_detection=True)
    return DesignedCase(kind, trigger, optical, linked=kind != "old_source", raised=kind == "counterpart")
