"""Cross-source association: a satellite trigger and an optical transient close in sky and time.

Within event-time windows, an optical event (ZTF or Rubin) inside a GCN trigger's error region and within
`window_s` of it is linked to it, and each raises the other's class by one level (multi-messenger
coincidence). The sky is cut into cells so each group stays small: an optical event goes to its cell, a
trigger to every cell its error region touches. Windows fire early on every new event and again for late
ones, so a counterpart arriving late is still linked.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.transforms import trigger, window

from config.settings import AssociationSpec, NightwatchConfig
from core import names
from core.association import Candidate, Link, candidate_for, cell_of, cells_within, match
from core.event import ALERT_LEVELS, Event
from transforms.common import counter
from transforms.hotstore import HotStoreDoFn
from transforms.metrics import GuardLateness


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
            yield cell_of(candidate.ra, candidate.dec), candidate


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
            counter(names.ASSOCIATIONS_WRITE_FAILED).inc()
            return
        self._stored.add(pair)
        if raised is not None:
            counter(names.ASSOCIATIONS_NEW).inc()
            for event in raised:  # the summary's alert counts include raises (HIGH -> CRITICAL moves one over)
                former = ALERT_LEVELS.get(event.lineage.get("raised_from", ""), "")
                if former in ("CRITICAL", "HIGH"):
                    counter(names.alert_level(former)).inc(-1)
                counter(names.alert_level(event.alert_level or "")).inc()
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
