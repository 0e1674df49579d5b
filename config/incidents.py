"""Incidents (incidents.yaml): which severities open one, where the opening page goes, when it resolves, and the
procedure (a runbook of runbooks.yaml) each level's checklist comes from."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from config.base import Strict

Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]
SEVERITIES: tuple[str, ...] = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")


class IncidentsConfig(Strict):
    version: str = "1"
    open_at: list[Severity] = Field(default_factory=lambda: ["SEV-1", "SEV-2"])
    channels: list[str] = Field(default_factory=lambda: ["pagerduty", "slack-ops", "webhook"])
    resolve_after_min: float = Field(5.0, ge=0)
    every_s: float = Field(30.0, gt=0)
    procedures: dict[Severity, str] = Field(default_factory=lambda: {"SEV-1": "sev1", "SEV-2": "sev2"})
    page_level: dict[Severity, Literal["CRITICAL", "HIGH"]] = Field(
        default_factory=lambda: {"SEV-1": "CRITICAL", "SEV-2": "CRITICAL", "SEV-3": "HIGH", "SEV-4": "HIGH"}
    )
