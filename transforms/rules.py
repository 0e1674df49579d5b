"""Reading a named value off an event, the way filter cuts and classification rules name them."""

from __future__ import annotations

from typing import Any

from pipeline.event import Event

_EVENT_FIELDS = frozenset(Event.model_fields)


def value_of(event: Event, name: str) -> Any:
    """An event field (source, kind, mag, ...), else a feature, else a quality field; None if absent."""
    if name in _EVENT_FIELDS:
        return getattr(event, name)
    if name in event.features:
        return event.features[name]
    return event.quality.get(name)
