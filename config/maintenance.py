"""Maintenance windows (maintenance.yaml): the guide's window types and notice periods."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from config.base import Strict
from config.notifications import clock


class WindowType(Strict):
    title: str
    weekdays: list[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]] | None = (
        None  # None: any day
    )
    start: str | None = None  # UTC HH:MM; None: any time
    end: str | None = None
    notice_h: float = Field(0.0, ge=0)  # how far ahead it must be announced
    silence: bool = True  # non-critical pages are suppressed while it is active
    default_duration_min: int = Field(60, gt=0)  # when announced without --end and without a fixed end

    @field_validator("start", "end")
    @classmethod
    def _times(cls, value: str | None) -> str | None:
        return clock(value)


class MaintenanceConfig(Strict):
    version: str
    announce_channels: list[str] = Field(default_factory=list)  # channels of notifications.yaml
    types: dict[str, WindowType]
