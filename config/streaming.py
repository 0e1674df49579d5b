"""The streaming job (streaming.yaml): Pub/Sub, windows, association, live-threshold refresh."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from config.base import Strict, only_known_sources


class PubSubSpec(Strict):
    project: str
    topics: dict[str, str]
    subscription_suffix: str = "-pipeline"
    alerts_topic: str
    event_time_attribute: str = "event_time"

    _known_sources = field_validator("topics")(lambda value: only_known_sources(value))

    def subscription(self, source: str) -> str:
        return f"{self.topics[source]}{self.subscription_suffix}"


class WindowSpec(Strict):
    metrics_s: int = Field(60, gt=0)
    allowed_lateness_s: int = Field(600, ge=0)
    tier_batch_s: int = Field(10, gt=0)


class AssociationSpec(Strict):
    window_s: int = Field(3600, gt=0)
    max_separation_deg: float = Field(15.0, gt=0, le=180)
    error_scale: float = Field(1.0, gt=0)


class ThresholdRefresh(Strict):
    refresh_s: float = Field(2.0, gt=0)


class QueueDepthSpec(Strict):
    """Where queue depth is read (ops/queue_depth.py): `local` = published minus received (the emulator);
    `cloud_monitoring` = Pub/Sub's num_undelivered_messages; `kafka` = the consumer group's lag."""

    backend: Literal["local", "cloud_monitoring", "kafka"] = "local"
    project: str | None = None  # cloud_monitoring: the project holding the subscriptions (default pubsub.project)
    kafka_bootstrap: str | None = None
    kafka_group: str = "nightwatch-pipeline"  # the streaming job's consumer group (pipeline/streaming.py)


class StreamingConfig(Strict):
    version: str
    pubsub: PubSubSpec
    queue_depth: QueueDepthSpec = QueueDepthSpec()
    windows: WindowSpec = WindowSpec()
    association: AssociationSpec = AssociationSpec()
    thresholds: ThresholdRefresh = ThresholdRefresh()
