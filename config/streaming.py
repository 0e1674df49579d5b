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
    # A metrics window also fires this often (processing time) before it closes: the monitor is live during it.
    early_firing_s: int = Field(5, gt=0)
    # Tier writes: at most this many events per file, and no partition's events on one worker (sharded keys).
    tier_batch_max: int = Field(1000, gt=0)
    tier_shards: int = Field(4, gt=0)  # stable shards per partition (each event's id picks one)


class AssociationSpec(Strict):
    """Multi-messenger association (core/association.py): which links count, and which raise classes."""

    window_s: int = Field(3600, gt=0)
    max_separation_deg: float = Field(15.0, gt=0, le=180)
    error_scale: float = Field(1.0, gt=0)
    # A link raises both events' classes only if a chance coincidence is less likely than this.
    max_chance_probability: float = Field(0.01, gt=0, le=1)
    # At most this many counterparts raised per trigger; further links are stored without raising.
    max_raised_per_trigger: int = Field(3, ge=0)
    # The local rate of unrelated new transients each survey reports, per square degree per day.
    unrelated_rate_per_deg2_per_day: dict[str, float] = {"ztf": 0.05, "rubin": 0.2}
    default_unrelated_rate_per_deg2_per_day: float = Field(0.2, ge=0)
    # The shortest time span a probability is computed over: a survey's revisit (a new source is not dated
    # better than its cadence).
    min_span_s: float = Field(300.0, ge=0)

    @field_validator("unrelated_rate_per_deg2_per_day")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        for source, rate in value.items():
            if source not in ("ztf", "rubin"):
                raise ValueError(f"unrelated transient rates are for optical surveys (ztf, rubin), not {source!r}")
            if not rate >= 0:
                raise ValueError(f"the unrelated transient rate of {source} must be >= 0, got {rate!r}")
        return value


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
