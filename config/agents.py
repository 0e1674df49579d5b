"""Agents (agents.yaml): each agent's kind, budgets, retries, breaker and options."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from config.base import SOURCES, Strict, only_known_sources

BUILTIN_AGENT_KINDS = ("catalogue", "history", "followup", "remote")


class BreakerSpec(Strict):
    failure_threshold: int = Field(5, ge=1)  # consecutive failed calls that open the breaker
    reset_after_s: float = Field(30.0, gt=0)  # how long it stays open before one probe call is let through


class AgentSpec(Strict):
    """One agent: what it takes, how long an event may wait for it, and how hard to try."""

    kind: str  # a built-in kind (catalogue, history, followup, remote) or "package.module:ClassName"
    enabled: bool = True
    classes: list[Literal["critical", "significant", "interesting", "routine", "rejected"]] = Field(
        default_factory=lambda: ["critical", "significant", "interesting"]
    )
    sources: list[str] = Field(default_factory=lambda: list(SOURCES))
    budget_ms: int = Field(1000, gt=0)  # the longest an event waits for this agent, retries included
    timeout_ms: int = Field(500, gt=0)  # one call
    retries: int = Field(2, ge=0)  # extra attempts within the budget (never for critical events)
    backoff_ms: int = Field(50, ge=0)  # first pause between attempts; doubles each time
    concurrency: int = Field(4, ge=1, le=64)  # calls in flight at once
    batch_size: int = Field(50, ge=1, le=1000)  # events per call
    breaker: BreakerSpec = BreakerSpec()
    url: str | None = None  # remote agents: the agent server's base URL
    options: dict[str, Any] = Field(default_factory=dict)  # the agent's own settings

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        only_known_sources(dict.fromkeys(value))
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in BUILTIN_AGENT_KINDS and not re.fullmatch(r"[\w.]+:\w+", value):
            raise ValueError(f"kind {value!r}: one of {', '.join(BUILTIN_AGENT_KINDS)} or 'package.module:ClassName'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AgentSpec:
        if self.kind == "remote" and not self.url:
            raise ValueError("a remote agent needs a url (the agent server, e.g. http://127.0.0.1:8601)")
        if self.timeout_ms > self.budget_ms:
            raise ValueError(f"timeout_ms {self.timeout_ms} is longer than budget_ms {self.budget_ms}")
        return self


class AgentsConfig(Strict):
    version: str
    agents: dict[str, AgentSpec]

    @field_validator("agents")
    @classmethod
    def _names(cls, value: dict[str, AgentSpec]) -> dict[str, AgentSpec]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,47}", name):
                raise ValueError(f"agent name {name!r}: lower-case letters, digits, - and _, up to 48")
        return value

    def enabled(self) -> dict[str, AgentSpec]:
        return {name: spec for name, spec in self.agents.items() if spec.enabled}
