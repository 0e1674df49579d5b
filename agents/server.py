"""`nightwatch agent-server NAME`: one configured agent as an HTTP service, a member of the agent pool.

Threaded (one thread per connection, keep-alive), JSON in and out (see `agents.remote` for the wire format).
`/health` reports calls, errors, the calls in flight and the oldest of them, so a stuck agent shows. A restart
(`nightwatch agents restart`, or POST /admin/restart) re-executes the process in place: stuck threads are
gone, the catalogue is reloaded, the port stays the same. The restart always needs a bearer token: the one
in $NIGHTWATCH_AGENT_TOKEN, else the one in the token file (`token_path`), generated on the first start with
mode 0600 (its path printed once) if it does not exist. `nightwatch agents restart` reads the same file.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agents.base import Agent, AgentContext
from agents.calls import memory_mb
from agents.registry import build_agent
from agents.remote import API_PREFIX, TOKEN_ENV, token_path
from config.environment import environment
from config.settings import NightwatchConfig
from core import telemetry
from core.event import Event

log = logging.getLogger("nightwatch.agent_server")
RESTARTS_ENV = "NIGHTWATCH_AGENT_RESTARTS"
MAX_BODY_BYTES = 64 * 1024 * 1024


class AgentService:
    """The agent behind the server, with the counts /health reports."""

    def __init__(self, agent: Agent):
        self.agent = agent
        self.started = time.time()
        self.calls = 0
        self.events = 0
        self.errors = 0
        self._in_flight: dict[int, float] = {}
        self._lock = threading.Lock()
        self._next = 0

    def find(self, events: list[Event]) -> list[dict[str, Any]]:
        with self._lock:
            self._next += 1
            ticket = self._next
            self._in_flight[ticket] = time.monotonic()
        try:
            findings = self.agent.find(events)
        except Exception:
            with self._lock:
                self.errors += 1
            raise
        finally:
            with self._lock:
                self._in_flight.pop(ticket, None)
                self.calls += 1
                self.events += len(events)
        return [finding.as_dict() for finding in findings]

    def health(self) -> dict[str, Any]:
        with self._lock:
            oldest = min(self._in_flight.values(), default=None)
            in_flight = len(self._in_flight)
            counts = {"calls": self.calls, "events": self.events, "errors": self.errors}
        oldest_s = time.monotonic() - oldest if oldest is not None else 0.0
        stuck = oldest_s > self.agent.spec.timeout_ms / 1000.0 * 4
        report = {
            "agent": self.agent.name,
            "kind": self.agent.kind,
            "pid": os.getpid(),
            "started_at": self.started,
            "uptime_s": round(time.time() - self.started, 3),
            "restarts": environment().agent_restarts,
            **counts,
            "in_flight": in_flight,
            "oldest_in_flight_s": round(oldest_s, 3),
            "stuck": stuck,
            # Agent Timeout runbook step 2: this agent process's resource use.
            "cpu_s": round(time.process_time(), 3),
            "memory_mb": None if (rss := memory_mb()) is None else round(rss, 1),
        }
        try:
            report.update(self.agent.health())
        except Exception as exc:  # noqa: BLE001 - a failing self-check is reported, not raised
            report.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        report["ok"] = bool(report.get("ok", True)) and not stuck
        return report


class _Handler(BaseHTTPRequestHandler):
    server: AgentHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: the pipeline reuses its connections

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, default=str).encode()
        if self.command == "POST" and self.path.startswith(API_PREFIX):
            telemetry.AGENT_SERVER_REQUESTS.labels(self.server.service.agent.name, str(status)).inc()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError(f"body of {length} bytes is over the {MAX_BODY_BYTES} limit")
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") == "/health":
            self._reply(200, self.server.service.health())
        elif self.path.rstrip("/") == "/metrics":
            body, content_type = telemetry.exposition()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._reply(404, {"error": f"no such path {self.path}: try /health or POST {API_PREFIX}/NAME/find"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        service = self.server.service
        if self.path == "/admin/restart":
            self._restart()
            return
        if self.path != f"{API_PREFIX}/{service.agent.name}/find":
            self._reply(
                404,
                {
                    "error": f"this server runs agent {service.agent.name!r}: POST {API_PREFIX}/"
                    f"{service.agent.name}/find"
                },
            )
            return
        try:
            body = self._body()
            events = [Event.model_validate(item) for item in body["events"]]
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            self._reply(400, {"error": f"bad request: {type(exc).__name__}: {exc}"[:2000]})
            return
        started = time.perf_counter()
        try:
            findings = service.find(events)
        except Exception as exc:  # noqa: BLE001 - the caller gets the failure as a 500, the server stays up
            log.exception("agent %s failed on %d events", service.agent.name, len(events))
            self._reply(500, {"error": f"agent failed: {type(exc).__name__}: {exc}"[:2000]})
            return
        telemetry.AGENT_LATENCY.labels(service.agent.name).observe(time.perf_counter() - started)
        self._reply(200, {"agent": service.agent.name, "findings": findings})

    def _restart(self) -> None:
        token = self.server.admin_token
        offered = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(token.encode(), offered.encode()):
            self._reply(
                401,
                {
                    "error": f"restart needs the admin token (${TOKEN_ENV}, or the file {self.server.token_file}) "
                    "as a bearer token"
                },
            )
            return
        self._reply(202, {"restarting": True, "agent": self.server.service.agent.name, "pid": os.getpid()})
        self.wfile.flush()
        threading.Thread(target=self.server.restart, daemon=True).start()


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], service: AgentService, admin_token: str = "", token_file: Path | None = None
    ):
        super().__init__(address, _Handler)
        self.service = service
        self.admin_token = admin_token  # never empty when made by make_server: admin endpoints need it
        self.token_file = token_file

    def restart(self) -> None:
        """Re-execute this process with the same command line: stuck threads die, the port is reused."""
        time.sleep(0.2)  # let the 202 reach the caller
        log.warning("restarting agent server %s (pid %d)", self.service.agent.name, os.getpid())
        self.socket.close()
        os.environ[RESTARTS_ENV] = str(environment().agent_restarts + 1)  # read by the restarted process
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)


def make_server(
    name: str, config: NightwatchConfig, host: str, port: int, db_url: str | None = None
) -> AgentHTTPServer:
    spec = config.agents.agents.get(name)
    if spec is None:
        raise ValueError(f"no agent {name!r} in config/agents.yaml: one of {', '.join(config.agents.agents)}")
    if spec.kind == "remote":
        raise ValueError(f"agent {name!r} is itself remote (it calls {spec.url}): serve an in-process agent")
    token, path = admin_token(db_url)
    agent = build_agent(name, spec, AgentContext(config, db_url))
    agent.setup()
    return AgentHTTPServer((host, port), AgentService(agent), token, path)


def admin_token(db_url: str | None) -> tuple[str, Path | None]:
    """The token admin endpoints need: $NIGHTWATCH_AGENT_TOKEN, else the token file's, else a new one written
    to the token file (owner-only) with its path printed once."""
    if environment().agent_token:
        return environment().agent_token, None
    path = token_path(db_url)
    if path.is_file():
        return path.read_text().strip(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    print(
        f"agent server: admin token generated in {path} (mode 0600): POST /admin/restart needs it as a bearer "
        "token (`nightwatch agents restart` reads it from there)",
        flush=True,
    )
    return token, path
