"""Routing: each event goes to exactly one destination by its class, with its alert level and night.

`Route` decides (the destination is written into the event's lineage); the agents run next; `Dispatch` then
sends each enriched event to its destination's output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from config.settings import NightwatchConfig
from core import names
from core.decisions import DESTINATIONS, route
from core.event import Event
from store.configs import LiveConfig
from transforms.common import DEAD_LETTER, EventStep, counter


class RouteDoFn(EventStep):
    """Routes with the configuration in force (the site's night), re-read every `refresh_s` from the hot store at
    `db_url`; each event records the configuration version that routed it (`lineage["config_version"]`)."""

    stage = names.ROUTE

    def __init__(
        self,
        config: NightwatchConfig,
        run_id: str,
        pipeline_version: str,
        db_url: str | None = None,
        refresh_s: float = 2.0,
    ):
        self._config = config
        self._run_id = run_id
        self._pipeline_version = pipeline_version
        self._db_url = db_url
        self._refresh_s = refresh_s
        self._live: LiveConfig | None = None

    def setup(self) -> None:
        self._live = LiveConfig(self._config, self._db_url, self._refresh_s)

    def teardown(self) -> None:
        if self._live is not None:
            self._live.close()

    def transform(self, event: Event) -> Iterator[Any]:
        config = self._live.get() if self._live is not None else self._config
        routed, destination = route(event, config.sources.site.timezone, self._run_id, self._pipeline_version)
        counter(names.routed(destination)).inc()
        lineage = {**routed.lineage, "config_version": str(config.config_version)}
        yield routed.model_copy(update={"lineage": lineage})


class Route(beam.PTransform):
    """Outputs: `events` (every routed event, its destination in `lineage["route"]`) and `dead_letter`."""

    def __init__(
        self,
        config: NightwatchConfig,
        run_id: str,
        pipeline_version: str,
        db_url: str | None = None,
        refresh_s: float = 2.0,
    ):
        super().__init__()
        self._config = config
        self._run_id = run_id
        self._pipeline_version = pipeline_version
        self._db_url = db_url
        self._refresh_s = refresh_s

    def expand(self, events: beam.PCollection) -> pvalue.DoOutputsTuple:
        step = RouteDoFn(self._config, self._run_id, self._pipeline_version, self._db_url, self._refresh_s)
        return events | "ToDestination" >> beam.ParDo(step).with_outputs(DEAD_LETTER, main="events")


class DispatchDoFn(EventStep):
    stage = names.DISPATCH

    def transform(self, event: Event) -> Iterator[Any]:
        destination = event.lineage.get("route")
        if destination not in DESTINATIONS:
            raise ValueError(f"event {event.event_id} reached dispatch without a route")
        yield event
        yield pvalue.TaggedOutput(destination, event)


class Dispatch(beam.PTransform):
    """Routed events in; outputs `events` (all), one output per destination, and `dead_letter`."""

    def expand(self, events: beam.PCollection) -> pvalue.DoOutputsTuple:
        return events | "ToOutputs" >> beam.ParDo(DispatchDoFn()).with_outputs(
            *DESTINATIONS, DEAD_LETTER, main="events"
        )
