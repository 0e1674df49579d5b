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
from transforms.common import DEAD_LETTER, EventStep, counter


class RouteDoFn(EventStep):
    stage = names.ROUTE

    def __init__(self, config: NightwatchConfig, run_id: str, pipeline_version: str):
        self._timezone = config.sources.site.timezone
        self._run_id = run_id
        self._pipeline_version = pipeline_version

    def transform(self, event: Event) -> Iterator[Any]:
        routed, destination = route(event, self._timezone, self._run_id, self._pipeline_version)
        counter(names.routed(destination)).inc()
        yield routed


class Route(beam.PTransform):
    """Outputs: `events` (every routed event, its destination in `lineage["route"]`) and `dead_letter`."""

    def __init__(self, config: NightwatchConfig, run_id: str, pipeline_version: str):
        super().__init__()
        self._config = config
        self._run_id = run_id
        self._pipeline_version = pipeline_version

    def expand(self, events: beam.PCollection) -> pvalue.DoOutputsTuple:
        step = RouteDoFn(self._config, self._run_id, self._pipeline_version)
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
