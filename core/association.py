"""Association matching, Beam-free: which satellite trigger and optical transient are close in sky and time.

The sky is cut into cells so each group stays small: an optical event goes to its cell, a trigger to every
cell its error region touches; `match` then tests every pair of a cell exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from config.settings import AssociationSpec
from core.event import Event
from core.sky import separation_deg

CELL_DEG = 10.0
OPTICAL = ("ztf", "rubin")
TRIGGER_KINDS = ("grb", "neutrino", "gravitational_wave", "xray_transient", "frb", "gamma_flare")


class Candidate(NamedTuple):
    event_id: str
    role: str  # trigger | counterpart
    ra: float
    dec: float
    radius_deg: float  # how far a counterpart may be (triggers); 0 for counterparts
    time_s: float


class Link(NamedTuple):
    trigger_id: str
    counterpart_id: str
    separation_deg: float
    time_offset_s: float


def cell_of(ra: float, dec: float) -> tuple[int, int]:
    band = min(int((dec + 90.0) // CELL_DEG), int(180 // CELL_DEG) - 1)
    width = CELL_DEG / max(math.cos(math.radians(min(abs(dec), 89.0))), 1e-3)
    return band, int((ra % 360.0) // width)


def cells_within(ra: float, dec: float, radius: float) -> set[tuple[int, int]]:
    """Every cell a circle may touch (a generous superset: the exact test is the separation)."""
    cells = set()
    step = CELL_DEG / 4
    dec_steps = int(math.ceil(2 * radius / step)) + 1
    for i in range(dec_steps + 1):
        d = max(-90.0, min(90.0, dec - radius + i * step))
        span = radius / max(math.cos(math.radians(min(abs(d), 89.0))), 1e-3)
        if span >= 180.0:
            ras = [k * step for k in range(int(360 / step))]
        else:
            ras = [ra - span + j * step for j in range(int(math.ceil(2 * span / step)) + 2)]
        cells.update(cell_of(r, d) for r in ras)
    return cells


def candidate_for(event: Event, spec: AssociationSpec) -> Candidate | None:
    if event.event_class == "rejected" or event.ra is None:
        return None
    time_s = event.event_time.timestamp()
    if event.source == "gcn" and event.kind in TRIGGER_KINDS and event.pos_error_deg is not None:
        radius = min(spec.max_separation_deg, spec.error_scale * event.pos_error_deg)
        return Candidate(event.event_id, "trigger", event.ra, event.dec, radius, time_s)
    if event.source in OPTICAL:
        return Candidate(event.event_id, "counterpart", event.ra, event.dec, 0.0, time_s)
    return None


def match(candidates: Iterable[Candidate], window_s: float) -> Iterator[Link]:
    """Every trigger-counterpart pair close enough in time and inside the trigger's radius."""
    triggers = [c for c in candidates if c.role == "trigger"]
    counterparts = [c for c in candidates if c.role == "counterpart"] if triggers else []
    for trig in triggers:
        near = [other for other in counterparts if abs(other.time_s - trig.time_s) <= window_s]
        if not near:
            continue
        # One vectorised call per trigger, not one per pair.
        apart = separation_deg(trig.ra, trig.dec, [other.ra for other in near], [other.dec for other in near])
        for other, separation in zip(near, apart.tolist(), strict=True):
            if separation <= trig.radius_deg:
                yield Link(trig.event_id, other.event_id, separation, other.time_s - trig.time_s)
