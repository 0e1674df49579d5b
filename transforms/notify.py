"""The notify step: each newly stored alert sent through the configured channels (`ops.notify`), and, when the job
starts, every alert an earlier run stored but never notified (the outbox, `notify_outbox`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from config.settings import NightwatchConfig
from core import names
from core.event import Event
from ops.notify import NotifierInForce
from store.events import alert_id_for
from store.hot import HotStore
from transforms.common import counter

log = logging.getLogger("nightwatch.notify")


class _NotifyDoFn(beam.DoFn):
    """Sends each newly stored alert with the short pipeline timeout. Never raises: a failed send is a recorded
    `retrying` delivery for `notify run`, not a dead letter (the alert itself is stored)."""

    def __init__(self, config: NightwatchConfig, db_url: str):
        self._config = config
        self._db_url = db_url

    def setup(self) -> None:
        self._store = HotStore(self._db_url)
        # Channels, levels and the budget in force, re-read live (a console change needs no restart).
        self._notifiers = NotifierInForce(self._store, self._config, pipeline=True)

    def process(self, event: Event) -> Iterator[dict[str, Any]]:
        try:
            results = self._notifiers.get().notify_stored(alert_id_for(event.event_id))
        except Exception as exc:  # noqa: BLE001 - e.g. the store is unreachable: `alerts check` will show it
            counter(names.notified("error")).inc()
            log.warning("could not notify %s: %s", event.event_id, exc)
            return
        for result in results:
            counter(names.notified(result["status"])).inc()
            yield {key: result[key] for key in ("alert_id", "channel", "status")}

    def teardown(self) -> None:
        self._notifiers.close()
        self._store.close()


class _PendingDoFn(_NotifyDoFn):
    """Once per run: the alerts stored but never notified (a run or a worker that crashed) are notified now."""

    def process(self, _start: Any) -> Iterator[dict[str, Any]]:
        try:
            results = self._notifiers.get().notify_pending()
        except Exception as exc:  # noqa: BLE001 - e.g. the store is unreachable: `notify run` will try again
            counter(names.notified("error")).inc()
            log.warning("could not notify the pending alerts: %s", exc)
            return
        for result in results:
            counter(names.notified(result["status"])).inc()
            yield {key: result[key] for key in ("alert_id", "channel", "status")}


class NotifyAlerts(beam.PTransform):
    """Newly stored alerts in; the first delivery of each (alert id, channel, status) out."""

    def __init__(self, config: NightwatchConfig, db_url: str):
        super().__init__()
        self._config = config
        self._db_url = db_url

    def expand(self, new_alerts: beam.PCollection) -> beam.PCollection:
        # The outbox: what an earlier run stored and never notified goes out too, once when the job starts (the
        # `deliveries` claim keeps an alert sent by both branches from going twice). A branch of its own: the
        # new alerts may be windowed, the start is not.
        (
            new_alerts.pipeline
            | "Start" >> beam.Create([None])
            | "SendPending" >> beam.ParDo(_PendingDoFn(self._config, self._db_url))
        )
        return new_alerts | "Send" >> beam.ParDo(_NotifyDoFn(self._config, self._db_url))
