"""Queue depth per source, one interface over three backends: the emulator's published-minus-received count,
Cloud Monitoring's `subscription/num_undelivered_messages` (Pub/Sub in production) and the consumer group's lag
(Kafka, the Flink deployment). Chosen by `streaming.yaml`'s `queue_depth.backend`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from config.streaming import StreamingConfig
from core.event import utcnow
from store.hot import HotStore

UNDELIVERED = "pubsub.googleapis.com/subscription/num_undelivered_messages"
# The metric is sampled every 60 s and reaches the API a few minutes late: look back far enough to find a point.
LOOKBACK = timedelta(minutes=10)


class QueueDepth(Protocol):
    def depths(self, sources: Iterable[str]) -> dict[str, int | None]:
        """Messages waiting per source (None where unknown)."""
        ...


class PublishedMinusReceived:
    """Against the emulator (no monitoring API): what the publishers counted minus what the job received."""

    def __init__(self, store: HotStore):
        self._store = store

    def depths(self, sources: Iterable[str]) -> dict[str, int | None]:
        return {source: self._store.queue_depth(source) for source in sources}


class CloudMonitoringDepth:
    """Pub/Sub's backlog per subscription from Cloud Monitoring (one ListTimeSeries call for all sources)."""

    def __init__(self, project: str, subscriptions: Mapping[str, str], client: Any = None):
        self.project = project
        self.subscriptions = dict(subscriptions)  # source -> subscription id
        self._client = client

    def request(self, sources: Iterable[str], now: datetime | None = None) -> Any:
        from google.cloud import monitoring_v3

        end = now or utcnow()
        ids = ", ".join(f'"{self.subscriptions[source]}"' for source in sources)
        return monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}",
            filter=f'metric.type = "{UNDELIVERED}" AND resource.type = "pubsub_subscription" '
            f"AND resource.labels.subscription_id = one_of({ids})",
            interval=monitoring_v3.TimeInterval(start_time=end - LOOKBACK, end_time=end),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )

    def parse(self, series: Iterable[Any]) -> dict[str, int]:
        """The newest point of each subscription's series, by source."""
        by_subscription = {subscription: source for source, subscription in self.subscriptions.items()}
        newest: dict[str, tuple[datetime, int]] = {}
        for one in series:
            source = by_subscription.get(one.resource.labels["subscription_id"])
            for point in one.points:
                at = point.interval.end_time
                if source is not None and (source not in newest or at > newest[source][0]):
                    newest[source] = (at, int(point.value.int64_value))
        return {source: value for source, (_, value) in newest.items()}

    def depths(self, sources: Iterable[str]) -> dict[str, int | None]:
        from google.cloud import monitoring_v3

        wanted = [source for source in sources if source in self.subscriptions]
        if self._client is None:  # application default credentials (README: Queue depth in production)
            self._client = monitoring_v3.MetricServiceClient()
        found = self.parse(self._client.list_time_series(request=self.request(wanted)))
        return {source: found.get(source) for source in wanted}


def consumer_lag(end: Mapping[Any, int], committed: Mapping[Any, int | None], beginning: Mapping[Any, int]) -> int:
    """Messages not yet consumed over a topic's partitions: end offset minus the group's committed offset; a
    partition the group never committed counts from its beginning (the job reads from the earliest)."""
    total = 0
    for partition, last in end.items():
        done = committed.get(partition)
        total += max(0, last - (beginning.get(partition, 0) if done is None else done))
    return total


class KafkaLagDepth:
    """Kafka's backlog per source topic: the pipeline's consumer group lag (kafka-python's admin and consumer)."""

    def __init__(self, bootstrap: str, group: str, topics: Mapping[str, str]):
        self.bootstrap, self.group, self.topics = bootstrap, group, dict(topics)

    def depths(self, sources: Iterable[str]) -> dict[str, int | None]:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="nightwatch-queue-depth")
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            committed = {tp: meta.offset for tp, meta in admin.list_consumer_group_offsets(self.group).items()}
            result: dict[str, int | None] = {}
            for source in sources:
                topic = self.topics.get(source)
                partitions = consumer.partitions_for_topic(topic) if topic else None
                if not partitions:
                    result[source] = None
                    continue
                tps = [TopicPartition(topic, p) for p in sorted(partitions)]
                result[source] = consumer_lag(consumer.end_offsets(tps), committed, consumer.beginning_offsets(tps))
            return result
        finally:
            consumer.close()
            admin.close()


def queue_depth_reader(streaming: StreamingConfig, store: HotStore) -> QueueDepth:
    """The configured backend (`streaming.yaml`: queue_depth)."""
    spec, pubsub = streaming.queue_depth, streaming.pubsub
    if spec.backend == "cloud_monitoring":
        project = spec.project or pubsub.project
        return CloudMonitoringDepth(project, {source: pubsub.subscription(source) for source in pubsub.topics})
    if spec.backend == "kafka":
        if not spec.kafka_bootstrap:
            raise ValueError("queue_depth.backend kafka needs queue_depth.kafka_bootstrap (host:port)")
        return KafkaLagDepth(spec.kafka_bootstrap, spec.kafka_group, pubsub.topics)
    return PublishedMinusReceived(store)
