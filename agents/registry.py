"""Which agent class a configured kind names: a built-in kind, or any Agent subclass as "package.module:Class"."""

from __future__ import annotations

import importlib

from agents.base import Agent, AgentContext
from agents.catalogue import CatalogueAgent
from agents.followup import FollowUpAgent
from agents.history import HistoryAgent
from agents.remote import RemoteAgent
from config.settings import AgentSpec

BUILT_IN: dict[str, type[Agent]] = {
    agent.kind: agent for agent in (CatalogueAgent, FollowUpAgent, HistoryAgent, RemoteAgent)
}


def agent_class(kind: str) -> type[Agent]:
    """A built-in kind, or any Agent subclass named "package.module:ClassName"."""
    if ":" in kind:
        module_name, class_name = kind.split(":", 1)
        found = getattr(importlib.import_module(module_name), class_name, None)
        if not (isinstance(found, type) and issubclass(found, Agent)):
            raise ValueError(f"agent kind {kind!r} is not an Agent subclass")
        return found
    if kind not in BUILT_IN:
        raise ValueError(f"unknown agent kind {kind!r}: one of {', '.join(sorted(BUILT_IN))}")
    return BUILT_IN[kind]


def build_agent(name: str, spec: AgentSpec, context: AgentContext) -> Agent:
    return agent_class(spec.kind)(name, spec, context)
