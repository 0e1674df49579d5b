"""Cross-source association as a keyed stateful step: satellite triggers and new optical sources per sky cell.

Each stored event becomes a candidate (core/association.py decides which: triggers, and optical sources new
enough to follow one) keyed by sky cell: an optical event by its cell, a trigger by every cell its error region
touches. Each cell keeps its triggers and its recent new optical sources in state, each until an event-time
timer expires it (a trigger after the association window, an optical source once no trigger before it can still
arrive; both plus the allowed lateness). A new candidate is compared once with the other role's candidates in
state, so each link is found exactly once, in linear time, whatever order the events arrive in; nothing is
re-emitted and nothing needs deduplicating. The links are stored, and raise classes only when a chance
coincidence is unlikely (at most `max_raised_per_trigger` per trigger): see core/association.py.

A runner without user state (the DaskRunner) uses the grouped form (`grouped=True`): group by cell, then the same
`match`, the same links.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.coders import FloatCoder, PickleCoder
from apache_beam.transforms import userstate, window
from apache_beam.utils.timestamp import Timestamp

from config.settings import AssociationSpec, NightwatchConfig
from core import names
from core.association import Candidate, Link, candidate_for, expires_at, keyed_by_cell, links_between, match
from core.event import ALERT_LEVELS, Event
from transforms.common import counter
from transforms.hotstore import HotStoreDoFn

Cell = tuple[int, int]
KEYED = beam.typehints.Tuple[beam.typehints.Tuple[int, int], beam.typehints.Any]


class _Candidates(beam.DoFn):
    """Stored events -> (cell, candidate), stamped with their event time (what the expiry timers count in)."""

    def __init__(self, spec: AssociationSpec):
        self._spec = spec

    def process(self, event: Event) -> Iterator[window.TimestampedValue]:
        try:
            candidate = candidate_for(event, self._spec)
        except Exception:  # noqa: BLE001 - an event the rules cannot read is not associated; it is stored already
            counter(names.ASSOCIATIONS_WRITE_FAILED).inc()
            return
        if candidate is None:
            return
        for keyed in keyed_by_cell(candidate):
            yield window.TimestampedValue(keyed, candidate.time_s)


class _AssociateInCell(beam.DoFn):
    """One sky cell's triggers and new optical sources in state; each new one is compared with the other role."""

    TRIGGERS = userstate.BagStateSpec("triggers", PickleCoder())
    OPTICAL = userstate.BagStateSpec("optical", PickleCoder())
    NEXT_EXPIRY = userstate.ReadModifyWriteStateSpec("next_expiry", FloatCoder())
    EXPIRY = userstate.TimerSpec("expiry", userstate.TimeDomain.WATERMARK)

    def __init__(self, spec: AssociationSpec, lateness_s: float):
        self._spec = spec
        self._lateness_s = lateness_s

    def process(
        self,
        element: tuple[Cell, Candidate],
        triggers=beam.DoFn.StateParam(TRIGGERS),
        optical=beam.DoFn.StateParam(OPTICAL),
        next_expiry=beam.DoFn.StateParam(NEXT_EXPIRY),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ) -> Iterator[Link]:
        _cell, candidate = element
        if candidate.role == "trigger":
            yield from links_between([candidate], list(optical.read()), self._spec)
            triggers.add(candidate)
        else:
            yield from links_between(list(triggers.read()), [candidate], self._spec)
            optical.add(candidate)
        when = expires_at(candidate, self._spec, self._lateness_s)
        soonest = next_expiry.read()
        if soonest is None or when < soonest:
            next_expiry.write(when)
            expiry.set(Timestamp.of(when))

    @userstate.on_timer(EXPIRY)
    def expire(
        self,
        triggers=beam.DoFn.StateParam(TRIGGERS),
        optical=beam.DoFn.StateParam(OPTICAL),
        next_expiry=beam.DoFn.StateParam(NEXT_EXPIRY),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ) -> None:
        # The time the timer was set for (kept in state): everything expiring by then goes, so each firing
        # forgets at least one candidate and the next timer is strictly later.
        at = next_expiry.read()
        if at is None:
            return
        remaining = []
        for bag in (triggers, optical):
            kept = [c for c in bag.read() if expires_at(c, self._spec, self._lateness_s) > at]
            bag.clear()
            for candidate in kept:
                bag.add(candidate)
            remaining += [expires_at(c, self._spec, self._lateness_s) for c in kept]
        if remaining:
            next_expiry.write(min(remaining))
            expiry.set(Timestamp.of(min(remaining)))
        else:
            next_expiry.clear()


class _WriteLinks(HotStoreDoFn):
    """Stores each link (once: the store ignores a link it has) and raises classes as the link allows; yields
    the events that got a new or higher alert."""

    def __init__(self, url: str, max_raised: int):
        super().__init__(url)
        self._max_raised = max_raised

    def process(self, link: Link) -> Iterator[Event]:
        try:
            raised = self._store.apply_association(link, self._max_raised)
        except Exception:  # noqa: BLE001 - the events are stored; the link is counted as not written
            counter(names.ASSOCIATIONS_WRITE_FAILED).inc()
            return
        if raised is None:
            return
        counter(names.ASSOCIATIONS_NEW).inc()
        for event in raised:  # the summary's alert counts include raises (HIGH -> CRITICAL moves one over)
            former = ALERT_LEVELS.get(event.lineage.get("raised_from", ""), "")
            if former in ("CRITICAL", "HIGH"):
                counter(names.alert_level(former)).inc(-1)
            counter(names.alert_level(event.alert_level or "")).inc()
        yield from raised


class AssociateSources(beam.PTransform):
    """Stored events in; links stored and classes raised in the hot store; raised alerting events out."""

    def __init__(self, config: NightwatchConfig, db_url: str, grouped: bool = False):
        super().__init__()
        self._spec = config.streaming.association
        self._lateness_s = float(config.streaming.windows.allowed_lateness_s)
        self._db_url = db_url
        self._grouped = grouped

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        keyed = (
            events
            | "Unwindowed" >> beam.WindowInto(window.GlobalWindows())
            # A typed key: a deterministic coder for the cell, as state and grouping need.
            | "KeyByCell" >> beam.ParDo(_Candidates(self._spec)).with_output_types(KEYED)
        )
        if self._grouped:
            spec = self._spec
            links = (
                keyed
                | "GroupByCell" >> beam.GroupByKey()
                | "Match" >> beam.FlatMap(lambda cell_candidates: match(cell_candidates[1], spec))
            )
        else:
            links = keyed | "MatchInCell" >> beam.ParDo(
                _AssociateInCell(self._spec, self._lateness_s)
            ).with_input_types(KEYED)
        return links | "Store" >> beam.ParDo(_WriteLinks(self._db_url, self._spec.max_raised_per_trigger))
