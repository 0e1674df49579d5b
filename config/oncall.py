"""On-call (oncall.yaml): the rotation, business hours and the escalation ladder."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    # Minutes from the alert by which this role must have responded (the guide: primary 15, secondary 30): when
    # they pass unacknowledged, the ladder pages the next step's role.
    response_min: int | None = Field(None, gt=0)


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
    # Filled in from the roles' `response_min` (the first step: 0); written only to say the same thing twice.
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

    @model_validator(mode="before")
    @classmethod
    def _ladder_from_response_times(cls, data: Any) -> Any:
        """Each step's `after_min` is the previous step's role's `response_min` (the first step pages at 0): the
        ladder climbs when a role's response time passes. A step that also writes `after_min` must agree."""
        if not isinstance(data, dict) or not isinstance(data.get("escalation"), dict):
            return data
        roles = data.get("roles") or {}
        steps = data["escalation"].get("steps")
        if not isinstance(steps, list):
            return data
        filled, previous = [], None
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                return data  # the field validators say what is wrong with it
            step = dict(step)
            if previous is None:
                derived = 0
            else:
                role = roles.get(previous) if isinstance(roles, dict) else None
                derived = role.get("response_min") if isinstance(role, dict) else getattr(role, "response_min", None)
            if derived is None and step.get("after_min") is None:
                raise ValueError(
                    f"escalation step {index} ({step.get('role')}): role {previous!r} has no response_min, "
                    "so nothing says when the ladder climbs past it"
                )
            if derived is not None and step.get("after_min") not in (None, derived):
                raise ValueError(
                    f"escalation step {index} ({step.get('role')}): after_min {step['after_min']} disagrees with "
                    f"{previous}.response_min {derived}; write only response_min"
                )
            step["after_min"] = derived if derived is not None else step["after_min"]
            filled.append(step)
            previous = step.get("role")
        return {**data, "escalation": {**data["escalation"], "steps": filled}}

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
