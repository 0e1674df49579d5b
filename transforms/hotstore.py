"""The base of every step that reads or writes the hot store: a connection from setup() to teardown()."""

from __future__ import annotations

import apache_beam as beam

from store.hot import HotStore


class HotStoreDoFn(beam.DoFn):
    """A DoFn holding a hot-store connection from setup() to teardown()."""

    def __init__(self, url: str):
        self._url = url
        self._store: HotStore | None = None

    def setup(self) -> None:
        self._store = HotStore(self._url)

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
