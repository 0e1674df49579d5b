"""Classification: the first configured rule that matches gives the class and score."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from config.settings import ClassificationConfig, Rule
from pipeline.event import Event
from transforms.common import StepTransform
from transforms.rules import LiveRulesStep, value_of


def rule_matches(event: Event, rule: Rule) -> bool:
    return all(condition.holds(value_of(event, name)) for name, condition in rule.when.items())


def classify(event: Event, rules: ClassificationConfig) -> Event:
    """The event with its class, score and the rule (and rules version) that decided it."""
    lineage = {**event.lineage, "rules_version": rules.version}
    if event.event_class == "rejected":  # decided by the filter; the reasons say which cuts
        return event.model_copy(update={"lineage": {**lineage, "decided_by": "filter"}})
    for rule in rules.rules:
        if rule_matches(event, rule):
            return event.model_copy(
                update={
                    "event_class": rule.event_class,
                    "score": rule.score,
                    "matched_rules": [rule.name],
                    "reasons": [rule.description or rule.name],
                    "lineage": {**lineage, "decided_by": f"rule:{rule.name}"},
                }
            )
    return event.model_copy(
        update={
            "event_class": rules.default.event_class,
            "score": rules.default.score,
            "matched_rules": [],
            "reasons": ["no rule matched: default class"],
            "lineage": {**lineage, "decided_by": "default"},
        }
    )


class ClassifyDoFn(LiveRulesStep):
    """Applies the rules in force: the shipped ones, or the newest live version in the hot store (`db_url`)."""

    stage = "classify"

    def transform(self, event: Event) -> Iterator[Event]:
        yield classify(event, self._live.classification())


class Classify(StepTransform):
    """Events in, classified events out; failures on `dead_letter`."""

    step_label = "ApplyRules"

    def make_dofn(self) -> beam.DoFn:
        return ClassifyDoFn(self._config, **self._options)
