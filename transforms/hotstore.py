"""The base of every step that reads or writes the hot store: a connection from setup() to teardown()."""

from __future__ import annotations

import apache_beam as beam

from core import telemetry
from store.hot import HotStore


class HotStoreDoFn(beam.DoFn):
    """A DoFn holding a hot-store connection from setup() to teardown()."""

    def __init__(self, url: str):
        self._url = url
        self._store: HotStore | None = None

    def setup(self) -> None:
        self._store = HotStore(self._url)
        # On a production runner's worker, the metrics of core/telemetry.py on $NIGHTWATCH_METRICS_PORT.
        telemetry.serve_from_environment()

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
