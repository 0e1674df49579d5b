"""The local streaming runner's Pub/Sub reader, tuned: more messages per pull, a short pull timeout,
and a pause for draining.

Beam's BundleBasedDirectRunner pulls 10 messages at a time with a 30-second blocking timeout. With one
subscription per source, a quiet source (the satellite sends a few notices a night) blocks the runner's
worker for 30 s on every empty pull, and the busy sources starve behind it. The local reader also
acknowledges messages as it pulls them, so draining pauses it: what it has pulled is finished, what it has not
stays on the subscription. Production runners (Dataflow, Flink) have their own readers and are not touched;
this only replaces the local evaluator's pull. Installed only on the Beam it was written for (`guard.py`);
`restore_local_reader()` puts Beam's pull back.
Adapted from apache_beam/runners/direct/transform_evaluator.py (Apache License 2.0), Beam 2.77.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.runners.local.guard import fixes_apply

# The upstream code this module replaces, and the sha256 of its source when the fix was written (guard.py).
UPSTREAM_SHA256 = {
    "apache_beam.runners.direct.transform_evaluator._PubSubReadEvaluator._read_from_pubsub": "88f18895e47e8a7f4d3f3b6fcffa62b7a950af94190755d88ff711bc5e02e1b8",  # noqa: E501
}

MAX_MESSAGES = 500
PULL_TIMEOUT_S = 1.0
# A pull's reply must fit gRPC's 4 MiB limit; big packets (Rubin alerts with cutouts, ~70-230 kB) halve the batch.
_batch = {"max_messages": MAX_MESSAGES}
_original: Any = None  # Beam's own pull while the tuned one is installed
# Set while a job drains: the reader stops pulling, so nothing more is acknowledged and left unprocessed.
_PAUSED = threading.Event()
# Flow control: packets pulled but not yet finished, beyond which the reader waits. The local reader acknowledges
# on pull, so without it a backlog is pulled into memory at once (measured: 2 GiB for a 17,500-packet backlog);
# with it the backlog waits on the subscription, as it does on Dataflow.
MAX_IN_FLIGHT = 2000
_backpressure: Callable[[], bool] | None = None


def limit_in_flight(check: Callable[[], bool] | None) -> None:
    """While `check()` is true the reader does not pull (None: no limit)."""
    global _backpressure
    _backpressure = check


# Subscriptions whose intake is paused (`nightwatch intake pause`): their reader stops pulling, the others go on.
_paused_subscriptions: set[str] = set()


def pause_subscriptions(names: set[str]) -> None:
    """Stop pulling from exactly these subscriptions (full paths); an empty set lets every reader pull."""
    _paused_subscriptions.clear()
    _paused_subscriptions.update(names)


def pause_reading() -> None:
    _PAUSED.set()


def resume_reading() -> None:
    _PAUSED.clear()


def _read_from_pubsub(self: Any, timestamp_attribute: str | None) -> list[tuple[Any, Any]]:
    from apache_beam.io.gcp.pubsub import PubsubMessage
    from apache_beam.utils.timestamp import Timestamp

    def element(message: Any) -> tuple[Any, Any]:
        parsed = PubsubMessage._from_message(message)
        value = parsed.attributes.get(timestamp_attribute) if timestamp_attribute else None
        if value is not None:
            try:
                timestamp = Timestamp(micros=int(value) * 1000)
            except ValueError:
                timestamp = Timestamp.from_rfc3339(value)
            timestamp = timestamp.to_precision(Timestamp.MICROS_PRECISION, allow_lossy_conversion=True)
        else:
            timestamp = Timestamp.from_utc_datetime(message.publish_time)
        return timestamp, parsed

    from google.api_core.exceptions import DeadlineExceeded, ResourceExhausted

    paused = _PAUSED.is_set() or self._sub_name in _paused_subscriptions
    if paused or (_backpressure is not None and _backpressure()):
        time.sleep(0.05)  # draining or full: leave the messages on the subscription
        return []
    client = _emulator_client() or self._get_subscriber_client(self._applied_ptransform)
    try:
        response = client.pull(subscription=self._sub_name, max_messages=_batch["max_messages"], timeout=PULL_TIMEOUT_S)
    except DeadlineExceeded:  # nothing to read right now
        return []
    except ResourceExhausted:
        # The reply was too large: pull fewer next time. The messages of this pull were leased, not lost:
        # the subscription redelivers them when their ack deadline passes.
        _batch["max_messages"] = max(1, _batch["max_messages"] // 2)
        return []
    results = []
    for received in response.received_messages:
        try:
            results.append(element(received.message))
        except ValueError:
            # A message with an unreadable event-time attribute: keep it, stamped with its publish time.
            parsed = PubsubMessage._from_message(received.message)
            results.append((Timestamp.from_utc_datetime(received.message.publish_time), parsed))
    ack_ids = [received.ack_id for received in response.received_messages]
    if ack_ids:
        client.acknowledge(subscription=self._sub_name, ack_ids=ack_ids)
    return results


_clients: dict[str, Any] = {}


def _emulator_client() -> Any:
    """Against the emulator, a client whose channel takes replies of any size (gRPC's default is 4 MiB)."""
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return None
    if host not in _clients:
        import grpc
        from google.cloud import pubsub_v1
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        channel = grpc.insecure_channel(host, options=[("grpc.max_receive_message_length", -1)])
        _clients[host] = pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    return _clients[host]


def tune_local_reader() -> bool:
    """Install the tuned pull into the local runner's Pub/Sub evaluator (idempotent). Returns whether it is
    installed: not on a Beam other than the one it was written for (one warning is logged)."""
    global _original
    if _original is not None:
        return True
    if not fixes_apply():
        return False
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    _original = evaluator.__dict__["_read_from_pubsub"]
    evaluator._read_from_pubsub = _read_from_pubsub
    return True


def restore_local_reader() -> None:
    """Put Beam's own pull back and reset the reader's process-wide state (batch size, limit, pause)."""
    global _original, _backpressure
    if _original is not None:
        from apache_beam.runners.direct import transform_evaluator

        transform_evaluator._PubSubReadEvaluator._read_from_pubsub = _original
        _original = None
    _batch["max_messages"] = MAX_MESSAGES
    _backpressure = None
    _PAUSED.clear()
