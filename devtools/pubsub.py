"""Pub/Sub: the local emulator, topics and subscriptions, and publishing packets the way sources do.

Each source publishes to its own topic; a message is the packet's bytes with attributes `source` and
`event_time` (milliseconds since the epoch: the pipeline's event-time timestamps). Publishers also count
what they published in the hot store, which is how queue depth is measured against the emulator.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from config.settings import PubSubSpec
from core.names import ATTR_INJECTED, ATTR_SOURCE

log = logging.getLogger("nightwatch.pubsub")

EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"


def event_time_attribute(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Emulator:
    """The Pub/Sub emulator from the Google Cloud SDK, as a child process (`gcloud beta emulators pubsub`)."""

    def __init__(self, project: str, port: int | None = None, log_path: Path | None = None):
        self.project = project
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> Emulator:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise RuntimeError("gcloud is not installed: the Pub/Sub emulator comes with the Google Cloud SDK")
        log_file = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        command = [
            gcloud,
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port={self.host}",
            f"--project={self.project}",
        ]
        # Its own process group: gcloud starts a Java server that must stop with it.
        self._process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not _port_open("127.0.0.1", self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited with code {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Pub/Sub emulator did not start within {timeout_s:.0f} s")
            time.sleep(0.2)
        os.environ[EMULATOR_ENV] = self.host
        log.info("Pub/Sub emulator listening on %s (project %s)", self.host, self.project)
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if os.environ.get(EMULATOR_ENV) == self.host:
            del os.environ[EMULATOR_ENV]

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def ensure_topics(spec: PubSubSpec, project: str | None = None) -> None:
    """Create the source topics, their pipeline subscriptions and the alerts topic, if missing."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    project = project or spec.project
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    try:
        for topic in [*spec.topics.values(), spec.alerts_topic]:
            try:
                publisher.create_topic(name=publisher.topic_path(project, topic))
            except AlreadyExists:
                pass
        for source, topic in spec.topics.items():
            try:
                subscriber.create_subscription(
                    name=subscriber.subscription_path(project, spec.subscription(source)),
                    topic=publisher.topic_path(project, topic),
                    ack_deadline_seconds=60,
                )
            except AlreadyExists:
                pass
    finally:
        subscriber.close()


@dataclass
class OutgoingPacket:
    source: str
    payload: bytes
    event_time: datetime
    injected: bool = False


class PacketPublisher:
    """Publishes packets to their source's topic; counts what it published in the hot store, if given one."""

    def __init__(self, spec: PubSubSpec, project: str | None = None, db_url: str | None = None):
        from google.cloud import pubsub_v1

        self._spec = spec
        self._project = project or spec.project
        self._client = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.05)
        )
        self._store = None
        if db_url:
            from store.hot import HotStore

            self._store = HotStore(db_url)
            self._store.ensure_schema()
        self.published: dict[str, int] = {}

    def publish(self, packets: Iterable[OutgoingPacket]) -> int:
        """Publish and wait until the service has every one; returns how many."""
        futures, counts = [], {}
        for packet in packets:
            topic = self._client.topic_path(self._project, self._spec.topics[packet.source])
            attributes = {
                ATTR_SOURCE: packet.source,
                self._spec.event_time_attribute: event_time_attribute(packet.event_time),
            }
            if packet.injected:
                attributes[ATTR_INJECTED] = "true"
            futures.append(self._client.publish(topic, packet.payload, **attributes))
            counts[packet.source] = counts.get(packet.source, 0) + 1
        for future in futures:
            future.result(timeout=60)
        for source, count in counts.items():
            self.published[source] = self.published.get(source, 0) + count
            if self._store is not None:
                self._store.add_published(source, count)
        return len(futures)

    def close(self) -> None:
        self._client.stop()
        if self._store is not None:
            self._store.close()
