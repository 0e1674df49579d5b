"""The live rules: the cuts and rules in force, re-read from the hot store while a job runs."""

from __future__ import annotations

from config.settings import NightwatchConfig
from store.thresholds import LiveRules
from transforms.common import EventStep


class LiveRulesStep(EventStep):
    """A step deciding with the cuts and rules in force: the shipped ones, or the newest live version
    in the hot store at `db_url`, re-read every `refresh_s` seconds."""

    def __init__(self, config: NightwatchConfig, db_url: str | None = None, refresh_s: float = 2.0):
        # Only the slices it reads travel with the step, not the whole configuration.
        self._filters = config.filters
        self._classification = config.classification
        self._db_url = db_url
        self._refresh_s = refresh_s
        self._live: LiveRules | None = None

    def setup(self) -> None:
        self._live = LiveRules(self._filters, self._classification, self._db_url, self._refresh_s)

    def teardown(self) -> None:
        if self._live is not None:
            self._live.close()
