"""What runs when (schedule.yaml): the guide's scheduled maintenance and its daily checklist, defined once for
the local scheduler and the Kubernetes CronJobs."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from config.base import Strict, config_folder, read_file
from config.environment import environment


class ScheduledJob(Strict):
    cron: str | None = None  # five fields: minute hour day-of-month month day-of-week
    every_min: float | None = Field(None, gt=0)
    command: list[str]
    what: str

    @model_validator(mode="after")
    def _one_schedule(self) -> ScheduledJob:
        if (self.cron is None) == (self.every_min is None):
            raise ValueError("give either cron or every_min")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r}: five fields (minute hour day month weekday)")
        return self


class ChecklistItem(Strict):
    time: str
    task: str
    owner: str
    command: list[str]

    @field_validator("time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"time {value!r}: HH:MM")
        return value

    @property
    def name(self) -> str:
        """A stable id: checklist-0600-review-overnight-alerts."""
        return f"checklist-{self.time.replace(':', '')}-{re.sub(r'[^a-z0-9]+', '-', self.task.lower()).strip('-')}"

    @property
    def cron(self) -> str:
        hour, minute = self.time.split(":")
        return f"{int(minute)} {int(hour)} * * *"


class ScheduleConfig(Strict):
    version: str = "1"
    timezone: str = "UTC"
    jobs: dict[str, ScheduledJob] = {}
    checklist: list[ChecklistItem] = []


def load_schedule(config_dir: str | Path | None = None) -> ScheduleConfig:
    folder = config_folder(config_dir, environment().config_dir)
    config, _ = read_file(folder, "schedule.yaml", ScheduleConfig, empty={})
    return config
