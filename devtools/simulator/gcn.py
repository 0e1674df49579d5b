"""GCN packets: which notice, JSON or VOEvent, a design is made of (the kind follows the mission and instrument,
config/sources.yaml gcn_kinds).

Designs:
  critical     real GRB notice (Fermi GBM JSON/VOEvent, Swift BAT-GUANO, SVOM ECLAIRs) with
               ra_dec_error (Error2Radius) <= 4 deg, or IceCube neutrino with error <= 1.5 deg.
  significant  real Fermi GBM GRB position with error 6..25 deg, or an Einstein Probe WXT
               X-ray transient.
  rejected     retraction (alert_type 'retraction'), test (alert_tense 'test' or
               role="test"), or Fermi VOEvent local-particle noise (Most_Likely_Index 2,
               Def_NOT_a_GRB true).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from devtools.simulator.common import draw
from devtools.simulator.gcn_json import ep_json, fermi_json, icecube_json, svom_json, swift_json
from devtools.simulator.packet import State
from devtools.simulator.voevent import fermi_voevent

# Class design weights (the "bad" share is set by bad_fraction on top).
GCN_CLASS_WEIGHTS: dict[str, float] = {"critical": 0.05, "significant": 0.62, "rejected": 0.33}
_GCN_CRITICAL_MISSIONS = {"fermi_json": 0.2, "fermi_voe": 0.2, "swift": 0.3, "icecube": 0.1, "svom": 0.2}
_GCN_REJECTED_KINDS = {
    "fermi_noise_voe": 0.3,
    "fermi_test_voe": 0.1,
    "fermi_test_json": 0.1,
    "swift_retraction": 0.2,
    "icecube_retraction": 0.1,
    "svom_test": 0.2,
}


def _gcn_notice(st: State, cls: str, t: datetime) -> tuple[str, Any, str]:
    """(format 'json'|'xml', notice dict or XML text, slug for the name)."""
    rng = st.rng
    u = rng.uniform
    if cls == "critical":
        kind = draw(rng, _GCN_CRITICAL_MISSIONS)
        if kind == "fermi_json":
            return "json", fermi_json(st, t, u(1.0, 4.0), record_number=4), "fermi-gbm"
        if kind == "fermi_voe":
            return "xml", fermi_voevent(st, t, u(1.0, 4.0)), "fermi-gbm"
        if kind == "swift":
            return "json", swift_json(st, t, u(0.02, 0.1)), "swift-bat-guano"
        if kind == "icecube":
            return "json", icecube_json(st, t, u(0.3, 1.5)), "icecube"
        return "json", svom_json(st, t, u(0.08, 0.2)), "svom-eclairs"
    if cls == "significant":
        x = rng.random()
        if x < 0.2:
            return "json", ep_json(st, t, u(0.01, 0.05)), "ep-wxt"
        if x < 0.6:
            return "json", fermi_json(st, t, u(6.0, 25.0), record_number=2), "fermi-gbm"
        return "xml", fermi_voevent(st, t, u(6.0, 25.0)), "fermi-gbm"
    if cls == "rejected":
        kind = draw(rng, _GCN_REJECTED_KINDS)
        if kind == "fermi_noise_voe":
            return "xml", fermi_voevent(st, t, u(8.0, 40.0), noise=True), "fermi-gbm"
        if kind == "fermi_test_voe":
            return "xml", fermi_voevent(st, t, u(1.0, 25.0), role="test"), "fermi-gbm"
        if kind == "fermi_test_json":
            return "json", fermi_json(st, t, u(1.0, 25.0), tense="test"), "fermi-gbm"
        if kind == "swift_retraction":
            return "json", swift_json(st, t, 0.05, retraction=True), "swift-bat-guano"
        if kind == "icecube_retraction":
            return "json", icecube_json(st, t, 1.0, retraction=True), "icecube"
        return "json", svom_json(st, t, u(0.08, 0.2), tense="test"), "svom-eclairs"
    raise ValueError(f"no GCN design for class {cls!r}")


def gcn_packet(st: State, cls: str, t: datetime) -> tuple[bytes, str, dict]:
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
