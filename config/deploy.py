"""Pipeline deployments (deploy.yaml): the guide's procedure for the job itself, per target."""

from __future__ import annotations

from pydantic import Field

from config.base import Strict


class DataflowDeploy(Strict):
    job_name: str = "nightwatch-stream"
    staging_job_name: str = "nightwatch-staging"
    project: str = "YOUR-PROJECT"
    region: str = "europe-west1"
    temp_location: str = "gs://YOUR-BUCKET/tmp"
    # Steps renamed since the running job's graph: old name -> new name (Dataflow's --transform_name_mapping).
    transform_name_mapping: dict[str, str] = Field(default_factory=dict)


class FlinkDeploy(Strict):
    flink_bin: str = "flink"  # Flink's command-line client
    flink_master: str = "flink-jobmanager:8081"
    kafka_bootstrap: str = "kafka:9092"
    savepoint_dir: str = "s3://YOUR-BUCKET/nightwatch/savepoints"


class DeployConfig(Strict):
    version: str
    # The tests a deployment runs first (a command and its arguments), from the repository's folder.
    tests_command: list[str] = Field(default_factory=lambda: ["make", "test"])
    window_type: str = "rolling"  # maintenance.yaml's type announced for the deployment
    staging_suffix: str = "-staging"  # the staging job reads <topic><suffix>
    injection_count: int = Field(30, ge=5)  # the smoke test's and the final injection test's packets
    injection_timeout_s: float = Field(180.0, gt=0)
    settle_s: float = Field(300.0, ge=0)  # how long the five panels are watched after the rollout
    poll_s: float = Field(15.0, gt=0)
    # Panels that must not turn bad while settling (the event rate follows the sky, so it does not gate).
    gate_panels: list[str] = Field(default_factory=lambda: ["Processing latency", "Queue depth", "Error rate"])
    start_timeout_s: float = Field(120.0, gt=0)  # a local job must be up by then
    stop_timeout_s: float = Field(240.0, gt=0)  # and drained by then
    dataflow: DataflowDeploy = DataflowDeploy()
    flink: FlinkDeploy = FlinkDeploy()
