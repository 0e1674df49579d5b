"""The guide's auto-scaling rules (scaling.yaml), shared by `scale advise` and the deployment templates' test."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from config.base import Strict, config_folder, read_file
from config.environment import environment


class Band(Strict):
    """Scale up above `up`, down below `down`."""

    up: float = Field(gt=0)
    down: float = Field(ge=0)

    @model_validator(mode="after")
    def _down_below_up(self) -> Band:
        if self.down >= self.up:
            raise ValueError(f"down ({self.down}) must be under up ({self.up})")
        return self


class Rules(Strict):
    queue_depth: Band = Band(up=10_000, down=1_000)
    cpu_percent: Band = Band(up=80, down=30)
    latency_s: Band = Band(up=120, down=30)


class Processors(Strict):
    min_replicas: int = Field(2, ge=1)
    max_replicas: int = Field(100, ge=1)
    scale_down_stabilization_s: int = Field(600, ge=0)
    scale_down_max_percent: int = Field(50, gt=0, le=100)


class ScalingConfig(Strict):
    version: str = "1"
    rules: Rules = Rules()
    event_processor: Processors = Processors()


def load_scaling(config_dir: str | Path | None = None) -> ScalingConfig:
    folder = config_folder(config_dir, environment().config_dir)
    config, _ = read_file(folder, "scaling.yaml", ScalingConfig, empty={})
    return config
