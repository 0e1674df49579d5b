"""The runbooks (`config/runbooks.yaml`): the guide's procedures as data, validated here, shown by `ops.health`.

Read with `load_config`'s reader (`config.base.read_file`) and rules: the folder is `config_dir`, else
$NIGHTWATCH_CONFIG_DIR, else the shipped defaults (a folder without runbooks.yaml falls back to the shipped
one); a bad file raises ConfigError naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.base import config_folder, read_file
from config.environment import environment

FILE_NAME = "runbooks.yaml"
# The runbooks `ops.health` names: a panel, the agents table, SEV-1, SEV-2 and SEV-4.
REQUIRED = (
    "high_queue_depth",
    "critical_alert_not_sent",
    "agent_timeout",
    "event_rate",
    "latency",
    "error_rate",
    "alert_volume",
    "sev1",
    "sev2",
    "sev4",
)


class RunbookSpec(BaseModel):
    """One runbook: its title, the symptoms that call for it, and its steps in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    symptoms: str = Field(min_length=1)
    steps: tuple[str, ...] = Field(min_length=1)
    contacts: tuple[str, ...] = ()  # whom it says to contact: names in contacts.yaml (checked when both load)


class RunbooksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    version: str
    runbooks: dict[str, RunbookSpec]

    @field_validator("runbooks")
    @classmethod
    def _every_required_runbook(cls, value: dict[str, RunbookSpec]) -> dict[str, RunbookSpec]:
        missing = [name for name in REQUIRED if name not in value]
        if missing:
            raise ValueError(f"missing runbooks {missing}")
        return value


def load_runbooks(config_dir: str | Path | None = None) -> RunbooksConfig:
    return read_file(config_folder(config_dir, environment().config_dir), FILE_NAME, RunbooksConfig)[0]
