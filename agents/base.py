"""The agent interface: what an agent declares, what it returns, and how the built-in kinds are found.

An agent takes a batch of routed events and returns one `Finding` per event: data to store with the event
and, optionally, a proposed class with a reason. How long an event may wait for it, retries, concurrency
and the circuit breaker are the caller's business (`agents.calls`), configured per agent in
config/agents.yaml; an agent only has to answer.

Writing a new agent: subclass `Agent`, implement `find` (and `setup`/`close` for clients or catalogues),
and name it in config/agents.yaml as `kind: package.module:ClassName`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, Literal

from config.settings import AgentSpec, NightwatchConfig, Site
from core.event import Event

Status = Literal["ok", "skipped", "timeout", "error"]


@dataclass
class Finding:
    """An agent's answer about one event."""

    data: dict[str, Any] = field(default_factory=dict)
    proposed_class: str | None = None  # a class the agent thinks fits better; stored, not applied
    reason: str = ""  # why it proposes the class

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"data": self.data}
        if self.proposed_class:
            found["proposed_class"] = self.proposed_class
            found["proposal_reason"] = self.reason
        return found


def enrichment(
    status: Status, latency_ms: float, attempts: int, finding: Finding | None = None, reason: str = ""
) -> dict[str, Any]:
    """What is stored under `event.enrichments[agent]`: the outcome of calling one agent for one event."""
    stored: dict[str, Any] = {"status": status, "latency_ms": round(latency_ms, 3), "attempts": attempts}
    if finding is not None:
        stored.update(finding.as_dict())
    if reason:
        stored["reason"] = reason
    return stored


@dataclass(frozen=True)
class AgentContext:
    """What an agent may need besides its own spec: the observing site and the hot store.

    Built from the whole configuration (`AgentContext(config, db_url)`) or from the slice alone
    (`AgentContext(site=..., db_url=...)`, what a pipeline step carries); only the slice is kept.
    """

    config: InitVar[NightwatchConfig | None] = None
    db_url: str | None = None
    site: Site | None = None

    def __post_init__(self, config: NightwatchConfig | None) -> None:
        if self.site is None and config is not None:
            object.__setattr__(self, "site", config.sources.site)


class Agent:
    """Base class: `find(events)` answers for a batch, in order. Raise on failure; the caller handles it."""

    kind = "agent"

    def __init__(self, name: str, spec: AgentSpec, context: AgentContext):
        self.name = name
        self.spec = spec
        self.context = context

    def setup(self) -> None:
        """Load catalogues, open clients: called once per worker before the first call."""

    def close(self) -> None:
        """Release what setup() took."""

    def find(self, events: Sequence[Event], timeout_s: float | None = None) -> list[Finding]:
        """One finding per event, in order. `timeout_s` bounds a remote call; in-process agents may ignore it."""
        raise NotImplementedError

    def health(self) -> dict[str, Any]:
        """A cheap self-check for `nightwatch agents health` and the agent server's /health."""
        return {"ok": True}


def register(kind: str) -> Callable[[type[Agent]], type[Agent]]:
    """Names a built-in agent's kind (`agents.registry` lists the built-in classes)."""

    def add(cls: type[Agent]) -> type[Agent]:
        cls.kind = kind
        return cls

    return add
