"""The decisions, as pure functions: quality cuts, classification rules and routing.

The Beam steps (`transforms.filter`, `transforms.classify`, `transforms.route`), the console's threshold preview
and the benchmark's reference all decide through these, so a decision is the same wherever it is made.
"""

from __future__ import annotations

from typing import Any

from config.settings import ClassificationConfig, Cut, FiltersConfig, Rule
from core.event import ALERT_LEVELS, Event
from core.night import observing_night

_EVENT_FIELDS = frozenset(Event.model_fields)

# The guide's routing: class -> (alert level, destination).
DESTINATION = {
    "critical": "alerts",
    "significant": "alerts",
    "interesting": "review",
    "routine": "routine",
    "rejected": "rejected",
}
ROUTES = {event_class: (ALERT_LEVELS[event_class], where) for event_class, where in DESTINATION.items()}
DESTINATIONS = ("alerts", "review", "routine", "rejected")


def value_of(event: Event, name: str) -> Any:
    """An event field (source, kind, mag, ...), else a feature, else a quality field; None if absent."""
    if name in _EVENT_FIELDS:
        return getattr(event, name)
    if name in event.features:
        return event.features[name]
    return event.quality.get(name)


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


def route(event: Event, timezone_name: str, run_id: str, pipeline_version: str) -> tuple[Event, str]:
    if event.event_class not in ROUTES:
        raise ValueError(f"event {event.event_id} reached routing without a class")
    level, destination = ROUTES[event.event_class]
    lineage = {**event.lineage, "run_id": run_id, "pipeline_version": pipeline_version, "route": destination}
    routed = event.model_copy(
        update={
            "alert_level": level,
            "night": observing_night(event.event_time, timezone_name),
            "lineage": lineage,
        }
    )
    return routed, destination


def undecided(event: Event) -> Event:
    """The event as it came out of the decoder: no class, score, reasons or decision lineage."""
    lineage = {key: value for key, value in event.lineage.items() if key not in ("filter_cuts", "decided_by")}
    return event.model_copy(
        update={"event_class": None, "score": None, "reasons": [], "matched_rules": [], "lineage": lineage}
    )


def decide(event: Event, filters: FiltersConfig, rules: ClassificationConfig) -> str:
    """The class the cuts and rules give an event, from its undecided state (already decided or not)."""
    return classify(apply_cuts(undecided(event), filters), rules).event_class or "routine"
