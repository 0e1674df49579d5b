"""What a proposed threshold change would do: the filter and classifier re-run over recent events.

Each recent event (its stored payload, without the raw bytes, which neither step reads) is decided twice from
its undecided state, once with the cuts and rules in force and once with the proposal, using the pipeline's own
`apply_cuts` and `classify`. Comparing the two (not the stored class) isolates the change from anything else
that moved an event since it was stored, such as a multi-messenger raise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from config.settings import ClassificationConfig, FiltersConfig
from core.decisions import apply_cuts, classify
from core.event import Event
from store.hot import HotStore
from store.schema import events


@dataclass
class Preview:
    considered: int
    changed: list[dict[str, str]] = field(default_factory=list)  # event, source, before, after
    transitions: Counter = field(default_factory=Counter)  # (before, after) -> count
    before_counts: Counter = field(default_factory=Counter)
    after_counts: Counter = field(default_factory=Counter)


def recent_events(store: HotStore, limit: int = 2000) -> list[Event]:
    query = sa.select(events.c.payload).order_by(events.c.received_time.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [Event.model_validate_json(payload) for payload in conn.execute(query).scalars()]


def _undecided(event: Event) -> Event:
    lineage = {key: value for key, value in event.lineage.items() if key not in ("filter_cuts", "decided_by")}
    return event.model_copy(
        update={"event_class": None, "score": None, "reasons": [], "matched_rules": [], "lineage": lineage}
    )


def decide(event: Event, filters: FiltersConfig, rules: ClassificationConfig) -> str:
    return classify(apply_cuts(_undecided(event), filters), rules).event_class or "routine"


def preview(
    recent: list[Event],
    filters: FiltersConfig,
    rules: ClassificationConfig,
    new_filters: FiltersConfig,
    new_rules: ClassificationConfig,
) -> Preview:
    result = Preview(considered=len(recent))
    for event in recent:
        before = decide(event, filters, rules)
        after = decide(event, new_filters, new_rules)
        result.before_counts[before] += 1
        result.after_counts[after] += 1
        if before != after:
            result.transitions[(before, after)] += 1
            result.changed.append({"event": event.event_id, "source": event.source, "before": before, "after": after})
    return result
