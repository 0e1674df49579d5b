"""What filter cuts and classification rules share: reading a named value off an event, and the live rules."""

from __future__ import annotations

from typing import Any

from config.settings import NightwatchConfig
from pipeline.event import Event
from pipeline.thresholds import LiveRules
from transforms.common import EventStep

_EVENT_FIELDS = frozenset(Event.model_fields)


def value_of(event: Event, name: str) -> Any:
    """An event field (source, kind, mag, ...), else a feature, else a quality field; None if absent."""
    if name in _EVENT_FIELDS:
        return getattr(event, name)
    if name in event.features:
        return event.features[name]
    return event.quality.get(name)


class LiveRulesStep(EventStep):
    """A step deciding with the cuts and rules in force: the shipped ones, or the newest live version
    in the hot store at `db_url`, re-read every `refresh_s` seconds."""

    def __init__(self, config: NightwatchConfig, db_url: str | None = None, refresh_s: float = 2.0):
        self._config = config
        self._db_url = db_url
        self._refresh_s = refresh_s
        self._live: LiveRules | None = None

    def setup(self) -> None:
        self._live = LiveRules(self._config.filters, self._config.classification, self._db_url, self._refresh_s)

    def teardown(self) -> None:
        if self._live is not None:
            self._live.close()
