"""What a change of cuts or rules would do to a set of events: each decided twice, counted and compared.

Each event (its stored payload, without the raw bytes, which neither step reads) is decided twice from its
undecided state, once with the cuts and rules in force and once with the proposal, using the pipeline's own
`apply_cuts` and `classify`. Comparing the two (not the stored class) isolates the change from anything else
that moved an event since it was stored, such as a multi-messenger raise. The console's threshold preview and
the release shadow report (`ops.releases`) both read it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from config.settings import ClassificationConfig, FiltersConfig
from core.decisions import decide
from core.event import Event


@dataclass
class Preview:
    considered: int
    changed: list[dict[str, str]] = field(default_factory=list)  # event, source, before, after
    transitions: Counter = field(default_factory=Counter)  # (before, after) -> count
    before_counts: Counter = field(default_factory=Counter)
    after_counts: Counter = field(default_factory=Counter)


def preview(
    recent: Iterable[Event],
    filters: FiltersConfig,
    rules: ClassificationConfig,
    new_filters: FiltersConfig,
    new_rules: ClassificationConfig,
) -> Preview:
    result = Preview(considered=0)
    for event in recent:
        result.considered += 1
        before = decide(event, filters, rules)
        after = decide(event, new_filters, new_rules)
        result.before_counts[before] += 1
        result.after_counts[after] += 1
        if before != after:
            result.transitions[(before, after)] += 1
            result.changed.append({"event": event.event_id, "source": event.source, "before": before, "after": after})
    return result
