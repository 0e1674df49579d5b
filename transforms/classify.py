"""Classification: the first configured rule that matches gives the class and score."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from core import names
from core.decisions import classify
from core.event import Event
from transforms.common import StepTransform
from transforms.rules import LiveRulesStep


class ClassifyDoFn(LiveRulesStep):
    """Applies the rules in force: the shipped ones, or the newest live version in the hot store (`db_url`)."""

    stage = names.CLASSIFY

    def transform(self, event: Event) -> Iterator[Event]:
        decided = classify(event, self._live.classification(event.event_id))
        shadow = self._live.shadow(event)  # a release in shadow: what it would have said, recorded only
        yield decided.model_copy(update={"lineage": {**decided.lineage, **shadow}}) if shadow else decided


class Classify(StepTransform):
    """Events in, classified events out; failures on `dead_letter`."""

    step_label = "ApplyRules"

    def make_dofn(self) -> beam.DoFn:
        return ClassifyDoFn(self._config, **self._options)
