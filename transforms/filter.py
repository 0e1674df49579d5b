"""Per-source quality cuts: an event failing any cut becomes `rejected` with the reasons; none is dropped."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from config.settings import Cut, FiltersConfig
from pipeline.event import Event
from transforms.common import StepTransform, counter
from transforms.rules import LiveRulesStep, value_of


def failed_cuts(event: Event, cuts: list[Cut]) -> list[Cut]:
    failed = []
    for cut in cuts:
        value = value_of(event, cut.field)
        if value is None:
            if cut.if_missing == "reject":
                failed.append(cut)
        elif not cut.condition.holds(value):
            failed.append(cut)
    return failed


def apply_cuts(event: Event, filters: FiltersConfig) -> Event:
    """The event, marked rejected with every failed cut's reason if it fails any."""
    failed = failed_cuts(event, filters.cuts_for(event.source))
    lineage = {**event.lineage, "filter_version": filters.version}
    if not failed:
        return event.model_copy(update={"lineage": lineage})
    return event.model_copy(
        update={
            "event_class": "rejected",
            "score": 0.0,
            "reasons": [cut.reason for cut in failed],
            "lineage": {**lineage, "filter_cuts": ",".join(cut.name for cut in failed)},
        }
    )


class FilterDoFn(LiveRulesStep):
    """Applies the cuts in force: the shipped ones, or the newest live version in the hot store (`db_url`)."""

    stage = "filter"

    def transform(self, event: Event) -> Iterator[Event]:
        result = apply_cuts(event, self._live.filters())
        if result.event_class == "rejected":
            counter(f"filtered.{event.source}").inc()
        yield result


class ApplyQualityCuts(StepTransform):
    """Events in; the same events out, cut ones marked rejected; failures on `dead_letter`."""

    step_label = "Cut"

    def make_dofn(self) -> beam.DoFn:
        return FilterDoFn(self._config, **self._options)
