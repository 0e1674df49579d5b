"""Association rules, Beam-free: which satellite trigger and optical transient belong together, and how likely
by chance.

Every runner (the stateful streaming form, the grouped batch form, tests) decides with these functions, so the
same packets give the same links whichever way they arrive:

- the sky is cut into cells: an optical event goes to its cell, a trigger to every cell its error region
  touches; a cell's triggers and recent new optical sources are compared exactly (`link_for`);
- an optical source counts only if it is *new after the trigger*: its first detection (from the packet's own
  history: ZTF `jdstarthist`/`prv_candidates`, Rubin `prvDiaSources`, decoded as `days_since_first`) is at or
  after the trigger time and within `window_s` of it, and this detection too; an old variable that happens to
  lie in the error region is not a counterpart;
- each link gets the chance-coincidence probability: the Poisson chance that at least one unrelated new
  transient appears in the error region between the trigger and the candidate's first detection, given the
  configured rate of unrelated transients of the candidate's survey (per deg² per day). A link raises classes
  only below `max_chance_probability`: a poorly localised trigger (a Fermi GBM circle of 10°) links its
  candidates for the scientists but raises none of them.
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
SQ_DEG_PER_SR = (180.0 / math.pi) ** 2
DAY_S = 86400.0


class Candidate(NamedTuple):
    event_id: str
    role: str  # trigger | counterpart
    ra: float
    dec: float
    radius_deg: float  # how far a counterpart may be (triggers); 0 for counterparts
    time_s: float  # the event time (trigger time; the optical detection's time)
    first_seen_s: float | None = None  # counterparts: the source's first detection (from its history)
    source: str = ""


class Link(NamedTuple):
    trigger_id: str
    counterpart_id: str
    separation_deg: float
    time_offset_s: float  # counterpart detection time minus trigger time
    chance_probability: float | None = None
    raise_classes: bool = True  # False: linked for the record, too likely a chance coincidence to raise


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


def first_seen_s(event: Event) -> float:
    """When the optical source was first detected (its packet's history), as epoch seconds."""
    days = event.features.get("days_since_first")
    age_s = float(days) * DAY_S if isinstance(days, (int, float)) and days > 0 else 0.0
    return event.event_time.timestamp() - age_s


def candidate_for(event: Event, spec: AssociationSpec) -> Candidate | None:
    if event.event_class == "rejected" or event.ra is None or event.dec is None:
        return None
    time_s = event.event_time.timestamp()
    if event.source == "gcn" and event.kind in TRIGGER_KINDS and event.pos_error_deg is not None:
        radius = min(spec.max_separation_deg, spec.error_scale * event.pos_error_deg)
        return Candidate(event.event_id, "trigger", event.ra, event.dec, radius, time_s, None, event.source)
    if event.source in OPTICAL:
        first = first_seen_s(event)
        if time_s - first > spec.window_s:
            return None  # known for longer than any trigger's window: never new after a trigger we could hold
        return Candidate(event.event_id, "counterpart", event.ra, event.dec, 0.0, time_s, first, event.source)
    return None


def keyed_by_cell(candidate: Candidate) -> Iterator[tuple[tuple[int, int], Candidate]]:
    """A trigger goes to every cell its error region touches; a counterpart to its own cell."""
    if candidate.role == "trigger":
        for cell in sorted(cells_within(candidate.ra, candidate.dec, candidate.radius_deg)):
            yield cell, candidate
    else:
        yield cell_of(candidate.ra, candidate.dec), candidate


def region_area_deg2(radius_deg: float) -> float:
    """The area of a circle of `radius_deg` on the sphere (a spherical cap), in square degrees."""
    return 2.0 * math.pi * (1.0 - math.cos(math.radians(min(radius_deg, 180.0)))) * SQ_DEG_PER_SR


def chance_probability(area_deg2: float, rate_per_deg2_per_day: float, span_s: float) -> float:
    """P(at least one unrelated new transient in `area_deg2` within `span_s`): 1 - exp(-rate x area x span)."""
    expected = rate_per_deg2_per_day * area_deg2 * max(span_s, 0.0) / DAY_S
    return -math.expm1(-expected)


def is_new_after(trigger: Candidate, counterpart: Candidate, window_s: float) -> bool:
    """First detected at or after the trigger, and this detection within the window."""
    first = counterpart.time_s if counterpart.first_seen_s is None else counterpart.first_seen_s
    return trigger.time_s <= first <= counterpart.time_s <= trigger.time_s + window_s


def link_for(trigger: Candidate, counterpart: Candidate, separation: float, spec: AssociationSpec) -> Link | None:
    """The link between a trigger and a counterpart at `separation` degrees, or None if they do not belong."""
    if separation > trigger.radius_deg or not is_new_after(trigger, counterpart, spec.window_s):
        return None
    first = counterpart.time_s if counterpart.first_seen_s is None else counterpart.first_seen_s
    span = max(first - trigger.time_s, spec.min_span_s)
    rate = spec.unrelated_rate_per_deg2_per_day.get(counterpart.source, spec.default_unrelated_rate_per_deg2_per_day)
    probability = chance_probability(region_area_deg2(trigger.radius_deg), rate, span)
    return Link(
        trigger.event_id,
        counterpart.event_id,
        separation,
        counterpart.time_s - trigger.time_s,
        probability,
        probability < spec.max_chance_probability,
    )


def links_between(triggers: list[Candidate], counterparts: list[Candidate], spec: AssociationSpec) -> Iterator[Link]:
    """Every link between these triggers and these counterparts (one vectorised separation per trigger)."""
    for trig in triggers:
        near = [other for other in counterparts if is_new_after(trig, other, spec.window_s)]
        if not near:
            continue
        apart = separation_deg(trig.ra, trig.dec, [other.ra for other in near], [other.dec for other in near])
        for other, separation in zip(near, apart.tolist(), strict=True):
            link = link_for(trig, other, separation, spec)
            if link is not None:
                yield link


def match(candidates: Iterable[Candidate], spec: AssociationSpec) -> Iterator[Link]:
    """Every link within one cell's candidates (the grouped form: a batch runner without state)."""
    candidates = list(candidates)
    triggers = sorted((c for c in candidates if c.role == "trigger"), key=lambda c: c.event_id)
    counterparts = sorted((c for c in candidates if c.role == "counterpart"), key=lambda c: c.event_id)
    yield from links_between(triggers, counterparts, spec)


def expires_at(candidate: Candidate, spec: AssociationSpec, lateness_s: float) -> float:
    """When a cell may forget a candidate (event time): a trigger after its window, a counterpart once no trigger
    it could belong to (one at or before its first detection) can still arrive, both plus the allowed lateness."""
    if candidate.role == "trigger":
        return candidate.time_s + spec.window_s + lateness_s
    return candidate.time_s + lateness_s
