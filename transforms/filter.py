"""Per-source quality cuts: an event failing any cut becomes `rejected` with the reasons; none is dropped."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from core import names
from core.decisions import apply_cuts
from core.event import Event
from transforms.common import StepTransform, counter
from transforms.rules import LiveRulesStep


class FilterDoFn(LiveRulesStep):
    """Applies the cuts in force: the shipped ones, or the newest live version in the hot store (`db_url`)."""

    stage = names.FILTER

    def transform(self, event: Event) -> Iterator[Event]:
        result = apply_cuts(event, self._live.filters(event.event_id))
        if result.event_class == "rejected":
            counter(names.filtered(event.source)).inc()
        yield result


class ApplyQualityCuts(StepTransform):
    """Events in; the same events out, cut ones marked rejected; failures on `dead_letter`."""

    step_label = "Cut"

    def make_dofn(self) -> beam.DoFn:
        return FilterDoFn(self._config, **self._options)
