"""Cross-source association: a satellite trigger and an optical transient close in sky and time.

Within event-time windows, an optical event (ZTF or Rubin) inside a GCN trigger's error region and within
`window_s` of it is linked to it, and each raises the other's class by one level (multi-messenger
coincidence). The sky is cut into cells so each group stays small: an optical event goes to its cell, a
trigger to every cell its error region touches. Windows fire early on every new event and again for late
ones, so a counterpart arriving late is still linked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import apache_beam as beam
from apache_beam.transforms import trigger, window

from config.settings import AssociationSpec, NightwatchConfig
from pipeline.event import Event
from pipeline.sinks import HotStoreDoFn
from transforms.common import counter
from transforms.metrics import GuardLateness

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


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (haversine, stable for small angles)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    a = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a))))


def _cell(ra: float, dec: float) -> tuple[int, int]:
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
        cells.update(_cell(r, d) for r in ras)
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


class _KeyByCell(beam.DoFn):
    def __init__(self, spec: AssociationSpec):
        self._spec = spec

    def process(self, event: Event) -> Iterator[tuple[tuple[int, int], Candidate]]:
        candidate = candidate_for(event, self._spec)
        if candidate is None:
            return
        if candidate.role == "trigger":
            for cell in cells_within(candidate.ra, candidate.dec, candidate.radius_deg):
                yield cell, candidate
        else:
            yield _cell(candidate.ra, candidate.dec), candidate


def match(candidates: Iterable[Candidate], window_s: float) -> Iterator[Link]:
    """Every trigger-counterpart pair close enough in time and inside the trigger's radius."""
    triggers = [c for c in candidates if c.role == "trigger"]
    counterparts = [c for c in candidates if c.role == "counterpart"] if triggers else []
    for trig in triggers:
        for other in counterparts:
            offset = other.time_s - trig.time_s
            if abs(offset) > window_s:
                continue
            separation = separation_deg(trig.ra, trig.dec, other.ra, other.dec)
            if separation <= trig.radius_deg:
                yield Link(trig.event_id, other.event_id, separation, offset)


class _WriteLinks(HotStoreDoFn):
    """Stores new links and raises both events' classes; yields the events that got a new or higher alert.

    Every firing of a cell's window (each new event in it) finds its links again: the ones this worker has
    stored already are skipped without asking the store.
    """

    def setup(self) -> None:
        super().setup()
        self._stored: set[tuple[str, str]] = set()

    def process(self, link: Link) -> Iterator[Event]:
        pair = (link.trigger_id, link.counterpart_id)
        if pair in self._stored:
            return
        try:
            raised = self._store.apply_association(link)
        except Exception:  # noqa: BLE001 - the link is re-found on the next firing; count the failure
            counter("associations.write_failed").inc()
            return
        self._stored.add(pair)
        if raised is not None:
            counter("associations.new").inc()
            yield from raised


class AssociateSources(beam.PTransform):
    """Stored events in; links stored and classes raised in the hot store; raised alerting events out."""

    def __init__(self, config: NightwatchConfig, db_url: str):
        super().__init__()
        self._config = config
        self._db_url = db_url

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        spec = self._config.streaming.association
        lateness = self._config.streaming.windows.allowed_lateness_s
        return (
            events
            | "AtEventTime" >> beam.Map(lambda event: window.TimestampedValue(event, event.event_time.timestamp()))
            | "GuardLateness" >> beam.ParDo(GuardLateness(2 * spec.window_s, lateness, "association"))
            | "KeyByCell" >> beam.ParDo(_KeyByCell(spec))
            | "SlidingWindows"
            >> beam.WindowInto(
                window.SlidingWindows(2 * spec.window_s, spec.window_s),
                trigger=trigger.AfterWatermark(early=trigger.AfterCount(1), late=trigger.AfterCount(1)),
                allowed_lateness=lateness,
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            )
            | "GroupByCell" >> beam.GroupByKey()
            | "Match" >> beam.FlatMap(lambda keyed: match(keyed[1], spec.window_s))
            | "Store" >> beam.ParDo(_WriteLinks(self._db_url))
        )
