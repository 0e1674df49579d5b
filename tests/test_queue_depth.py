"""Queue depth in production behind the local interface: Cloud Monitoring's num_undelivered_messages (the real
client against a local gRPC server answering with a recorded response) and Kafka's consumer lag from offsets."""

from __future__ import annotations

from concurrent import futures
from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

from config import load_config
from ops.queue_depth import (
    CloudMonitoringDepth,
    KafkaLagDepth,
    PublishedMinusReceived,
    consumer_lag,
    queue_depth_reader,
)

PORT = 19660  # this suite's port
RECORDED = Path(__file__).parent / "recorded" / "cloud_monitoring_num_undelivered.json"
NOW = datetime(2026, 11, 27, 3, 5, tzinfo=timezone.utc)


@pytest.fixture
def monitoring_server():
    """A local MetricService answering ListTimeSeries with the recorded response; keeps the requests it got."""
    received: list[monitoring_v3.ListTimeSeriesRequest] = []

    def list_time_series(request, _context):
        received.append(request)
        return monitoring_v3.ListTimeSeriesResponse.from_json(RECORDED.read_text())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(
        list_time_series,
        request_deserializer=monitoring_v3.ListTimeSeriesRequest.deserialize,
        response_serializer=monitoring_v3.ListTimeSeriesResponse.serialize,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("google.monitoring.v3.MetricService", {"ListTimeSeries": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{PORT}")
    server.start()
    yield received
    server.stop(None)


def production_config():
    config = load_config()
    streaming = config.streaming.model_copy(
        update={
            "queue_depth": config.streaming.queue_depth.model_copy(
                update={"backend": "cloud_monitoring", "project": "nightwatch-prod"}
            )
        }
    )
    return streaming


def test_the_request_names_every_subscription_and_a_recent_interval():
    reader = queue_depth_reader(production_config(), store=None)
    assert isinstance(reader, CloudMonitoringDepth)
    request = reader.request(["ztf", "rubin", "gcn"], NOW)
    assert request.name == "projects/nightwatch-prod"
    assert request.filter == (
        'metric.type = "pubsub.googleapis.com/subscription/num_undelivered_messages" AND resource.type = '
        '"pubsub_subscription" AND resource.labels.subscription_id = one_of("nightwatch-ztf-pipeline", '
        '"nightwatch-rubin-pipeline", "nightwatch-gcn-pipeline")'
    )
    assert request.interval.end_time == NOW
    assert (NOW - request.interval.start_time).total_seconds() == 600
    assert request.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL


def test_the_real_client_reads_the_backlog_per_source(monitoring_server):
    channel = grpc.insecure_channel(f"127.0.0.1:{PORT}")
    client = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    reader = CloudMonitoringDepth(
        "nightwatch-prod",
        {s: f"nightwatch-{s}-pipeline" for s in ("ztf", "rubin", "gcn")},
        client=client,
    )
    # The newest point of each series; a subscription with no point in the interval is unknown, not 0.
    assert reader.depths(["ztf", "rubin", "gcn"]) == {"ztf": 310, "rubin": 12480, "gcn": None}
    [request] = monitoring_server
    assert request.name == "projects/nightwatch-prod" and "one_of(" in request.filter


def test_kafka_lag_is_end_minus_committed_over_partitions():
    end = {("nightwatch-rubin", 0): 1_000, ("nightwatch-rubin", 1): 5_000, ("nightwatch-rubin", 2): 70}
    committed = {("nightwatch-rubin", 0): 400, ("nightwatch-rubin", 1): 5_000}  # partition 2 never committed
    beginning = {("nightwatch-rubin", 2): 20}
    assert consumer_lag(end, committed, beginning) == 600 + 0 + 50


def test_the_backend_comes_from_the_configuration(store):
    config = load_config()
    assert isinstance(queue_depth_reader(config.streaming, store), PublishedMinusReceived)
    kafka = config.streaming.model_copy(
        update={
            "queue_depth": config.streaming.queue_depth.model_copy(
                update={"backend": "kafka", "kafka_bootstrap": "kafka:9092"}
            )
        }
    )
    reader = queue_depth_reader(kafka, store)
    assert isinstance(reader, KafkaLagDepth) and reader.group == "nightwatch-pipeline"
    assert reader.topics["rubin"] == "nightwatch-rubin"
    store.add_published("ztf", 12)
    assert PublishedMinusReceived(store).depths(["ztf", "gcn"]) == {"ztf": 12, "gcn": None}
