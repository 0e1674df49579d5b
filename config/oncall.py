"""On-call (oncall.yaml): the rotation, business hours and the escalation ladder."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import WEEKDAYS, Strict
from config.notifications import clock


class Person(Strict):
    name: str
    channel: str  # a channel of notifications.yaml
    to: str | None = None  # the e-mail address or Slack handle on that channel, if it is not the channel's own


class RotaRole(Strict):
    title: str
    coverage: Literal["24/7", "business_hours"]
    people: list[str] = Field(min_length=1)  # in rotation order, one a week from rotation_start
    response_min: int | None = None


class BusinessHours(Strict):
    days: list[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]] = Field(
        default_factory=lambda: list(WEEKDAYS[:5])
    )
    start: str = "09:00"
    end: str = "17:00"
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _times(cls, value: str) -> str:
        return clock(value)  # type: ignore[return-value]


class EscalationStep(Strict):
    after_min: int = Field(ge=0)
    role: str
    note: str = ""


class EscalationSpec(Strict):
    levels: list[Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]] = Field(default_factory=lambda: ["CRITICAL"])
    steps: list[EscalationStep]
    give_up_after_h: float = Field(12.0, gt=0)  # older unacknowledged alerts are left to the handoff

    @field_validator("steps")
    @classmethod
    def _in_order(cls, value: list[EscalationStep]) -> list[EscalationStep]:
        times = [step.after_min for step in value]
        if times != sorted(set(times)):
            raise ValueError(f"steps must climb: after_min {times} must increase")
        return value


class OnCallConfig(Strict):
    version: str
    rotation_start: datetime  # weeks are counted from here; each role moves to its next person every 7 days
    business_hours: BusinessHours = BusinessHours()
    roles: dict[str, RotaRole]
    people: dict[str, Person]
    escalation: EscalationSpec

    @model_validator(mode="after")
    def _references(self) -> OnCallConfig:
        if self.rotation_start.tzinfo is None:
            raise ValueError("rotation_start needs a time zone, e.g. 2026-01-05T09:00:00Z")
        missing = sorted({p for role in self.roles.values() for p in role.people} - set(self.people))
        if missing:
            raise ValueError(f"people {missing} are in the rotation but not under people")
        unknown = sorted({step.role for step in self.escalation.steps} - set(self.roles))
        if unknown:
            raise ValueError(f"escalation roles {unknown} are not rotation roles ({sorted(self.roles)})")
        return self
