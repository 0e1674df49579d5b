"""The remote agent: an agent running as its own HTTP service (`nightwatch agent-server`), the agent pool.

One POST per batch of events over a pooled keep-alive session (connections are reused across calls and
threads); the call's timeout is the caller's remaining budget. The wire format is JSON:

    POST {url}/v1/agents/{agent}/find   {"events": [<event without raw bytes>, ...]}
    200 {"agent": NAME, "findings": [{"data": {...}, "proposed_class": ..., "proposal_reason": ...}, ...]}
    GET  {url}/health                   {"ok": true, "agent": NAME, "pid": ..., "in_flight": ..., ...}
    POST {url}/admin/restart            202, then the server process restarts itself
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from agents.base import Agent, Finding, register
from config.environment import environment
from core.event import Event
from store.layout import Outputs

API_PREFIX = "/v1/agents"


def find_url(base_url: str, agent: str) -> str:
    return f"{base_url.rstrip('/')}{API_PREFIX}/{agent}/find"


def finding_from(answer: dict[str, Any]) -> Finding:
    return Finding(
        data=dict(answer.get("data") or {}),
        proposed_class=answer.get("proposed_class"),
        reason=answer.get("proposal_reason") or "",
    )


@register("remote")
class RemoteAgent(Agent):
    def setup(self) -> None:
        self.url = str(self.spec.url).rstrip("/")
        self.remote_name = str(self.spec.options.get("agent", self.name))
        self.session = requests.Session()
        # Retries are the caller's (within the budget), not the transport's.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.spec.concurrency, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def find(self, events: Sequence[Event], timeout_s: float | None = None) -> list[Finding]:
        timeout = timeout_s or self.spec.timeout_ms / 1000.0
        body = {"events": [event.summary_dict() for event in events]}
        response = self.session.post(find_url(self.url, self.remote_name), json=body, timeout=(timeout, timeout))
        if response.status_code != 200:
            raise RuntimeError(f"agent server answered {response.status_code}: {response.text[:300]}")
        findings = response.json().get("findings")
        if not isinstance(findings, list):
            raise ValueError("agent server answer has no findings list")
        return [finding_from(answer) for answer in findings]

    def health(self) -> dict[str, Any]:
        response = self.session.get(f"{self.url}/health", timeout=self.spec.timeout_ms / 1000.0)
        response.raise_for_status()
        return response.json()


TOKEN_ENV = "NIGHTWATCH_AGENT_TOKEN"
TOKEN_FILE_ENV = "NIGHTWATCH_AGENT_TOKEN_FILE"
TOKEN_FILE_NAME = "agent-token"


def token_path(db_url: str | None = None) -> Path:
    """Where an agent server keeps its generated admin token: $NIGHTWATCH_AGENT_TOKEN_FILE, else beside a SQLite
    hot store (the outputs), else ~/.nightwatch/agent-token."""
    if environment().agent_token_file:
        return environment().agent_token_file
    if db_url is None:
        db_url = Outputs.under("out", None).db_url  # the commands' default hot store
    if db_url.startswith("sqlite:///"):
        return Path(db_url.removeprefix("sqlite:///")).parent / TOKEN_FILE_NAME
    return Path.home() / ".nightwatch" / TOKEN_FILE_NAME


def admin_token_for_client(db_url: str | None = None) -> str | None:
    """The token to send: $NIGHTWATCH_AGENT_TOKEN, else the token file's, else None."""
    if environment().agent_token:
        return environment().agent_token
    path = token_path(db_url)
    return path.read_text().strip() if path.is_file() else None


def restart(url: str, timeout_s: float = 5.0, token: str | None = None) -> dict[str, Any]:
    """Ask an agent server to restart itself (the Agent Timeout runbook's "restart agent if stuck"), with the
    admin token (given, else $NIGHTWATCH_AGENT_TOKEN, else the token file)."""
    token = token or admin_token_for_client()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(f"{url.rstrip('/')}/admin/restart", timeout=timeout_s, headers=headers)
    response.raise_for_status()
    return response.json()


def health(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    response = requests.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
    response.raise_for_status()
    return response.json()
