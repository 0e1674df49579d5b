"""Agent commands: `nightwatch agent-server NAME`, `nightwatch agents health`, `nightwatch agents restart`.

`agents health` answers the Agent Timeout runbook's first question, "which agent?": for each configured
agent, its latest windows from the hot store (latency p95 against the budget, timeouts, errors, skips, the
breaker) and, for remote agents, the server's own /health (reachable, calls in flight, stuck). It exits 1
when any agent needs attention, and prints the runbook steps for it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import requests

from access.audit import record
from agents import remote
from cli.common import (
    acting_as,
    identity_options,
    metrics_option,
    open_store,
    serve_metrics,
    store_options,
    store_url,
)
from config.settings import load_config
from core.event import utcnow

RUNBOOK = (
    "Agent Timeout runbook: 1. identify the agent (above); 2. check its resource use (agent server /health, "
    "kubectl top pods -l app=agent-pool); 3. restart it if stuck: nightwatch agents restart NAME; "
    "4. scale it if resource-bound: kubectl scale deployment agent-pool --replicas=N; 5. look for data that "
    "makes it slow; 6. critical events already skip it when it is over budget (see its skips)."
)


@dataclass
class AgentHealth:
    agent: str
    kind: str
    enabled: bool
    budget_ms: int
    status: str = "no data"  # ok | no data | over budget | failing | breaker open | down | stuck
    calls: int = 0
    latency_p95_ms: float | None = None
    timeouts: int = 0
    errors: int = 0
    skips: int = 0
    breaker_state: str | None = None
    server: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    cpu_ms: float | None = None  # CPU time of its calls over the windows (step 2: resource usage)
    memory_mb: float | None = None  # the largest worker RSS seen while calling it
    slowest: list[dict[str, Any]] = field(default_factory=list)  # step 5: the data that makes it slow

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems)

    def flag(self, status: str, problem: str) -> None:
        """Record a problem; the first one found names the status."""
        if not self.problems:
            self.status = status
        self.problems.append(problem)


def assess(name: str, spec: Any, windows: list[dict[str, Any]], server: dict[str, Any] | None) -> AgentHealth:
    """Judge one agent from its recent metric windows and (remote agents) its server's health report."""
    health = AgentHealth(name, spec.kind, spec.enabled, spec.budget_ms, server=server)
    mine = [row for row in windows if row["agent"] == name]
    if mine:
        health.calls = sum(row["calls"] for row in mine)
        health.timeouts = sum(row["timeouts"] for row in mine)
        health.errors = sum(row["errors"] for row in mine)
        health.skips = sum(row["skips"] for row in mine)
        p95s = [row["latency_p95_ms"] for row in mine if row["latency_p95_ms"] is not None]
        health.latency_p95_ms = max(p95s) if p95s else None
        health.breaker_state = mine[-1]["breaker_state"]
        cpu = [row["cpu_ms"] for row in mine if row.get("cpu_ms") is not None]
        health.cpu_ms = sum(cpu) if cpu else None
        memory = [row["memory_mb"] for row in mine if row.get("memory_mb") is not None]
        health.memory_mb = max(memory) if memory else None
        slow = [entry for row in mine for entry in json.loads(row.get("slowest") or "[]")]
        health.slowest = sorted(slow, key=lambda entry: -entry["latency_ms"])[:5]
        if health.breaker_state != "closed":
            health.flag(f"breaker {health.breaker_state}", f"breaker {health.breaker_state}: the agent kept failing")
        if health.latency_p95_ms is not None and health.latency_p95_ms > spec.budget_ms:
            health.flag(
                "over budget", f"latency p95 {health.latency_p95_ms:.0f} ms over the {spec.budget_ms} ms budget"
            )
        failed = health.timeouts + health.errors
        if health.calls and failed / health.calls > 0.01:
            health.flag("failing", f"{failed} of {health.calls} calls timed out or failed")
    if spec.kind == "remote" and spec.enabled:
        if server is None or "unreachable" in server:
            health.flag("down", f"agent server {spec.url} unreachable: {(server or {}).get('unreachable', '')}")
        elif server.get("stuck"):
            health.flag("stuck", f"agent server stuck: a call in flight for {server['oldest_in_flight_s']} s")
    if not health.problems and (mine or server):
        health.status = "ok"
    return health


def _server_health(url: str) -> dict[str, Any]:
    try:
        return remote.health(url, timeout_s=3.0)
    except requests.RequestException as exc:
        return {"unreachable": f"{type(exc).__name__}: {exc}"[:200], "url": url}


def _health(args: argparse.Namespace, _beam_args: list[str]) -> int:
    if args.url:
        reports = {url: _server_health(url) for url in args.url}
        print(json.dumps(reports, indent=2, default=str) if args.json else _servers_table(reports))
        return 0 if all(report.get("ok") for report in reports.values()) else 1

    config = load_config(args.config)
    store = open_store(args)
    windows = store.agent_windows(since=utcnow() - timedelta(minutes=args.minutes))
    store.close()
    checks = []
    for name, spec in config.agents.agents.items():
        server = _server_health(spec.url) if spec.kind == "remote" and spec.enabled else None
        checks.append(assess(name, spec, windows, server))
    if args.json:
        print(json.dumps([asdict(check) for check in checks], indent=2, default=str))
    else:
        print(_checks_table(checks, args.minutes))
        if any(check.needs_attention for check in checks):
            print(RUNBOOK)
    return 1 if any(check.needs_attention for check in checks) else 0


def _checks_table(checks: list[AgentHealth], minutes: int) -> str:
    names = [check.agent if check.enabled else f"{check.agent} (off)" for check in checks]
    width = max([len(name) for name in names] + [len("agent")]) + 2
    header = f"agents over the last {minutes} min (hot store agent_metrics; remote agents: their /health)"
    lines = [
        header,
        f"{'agent':<{width}}{'kind':<11}{'status':<14}{'calls':>7}{'p95 ms':>9}{'budget':>8}"
        f"{'timeouts':>9}{'errors':>7}{'skips':>7}  breaker",
    ]
    for check, name in zip(checks, names, strict=True):
        p95 = f"{check.latency_p95_ms:.1f}" if check.latency_p95_ms is not None else "-"
        lines.append(
            f"{name:<{width}}{check.kind:<11}{check.status:<14}{check.calls:>7}{p95:>9}{check.budget_ms:>8}"
            f"{check.timeouts:>9}{check.errors:>7}{check.skips:>7}  {check.breaker_state or '-'}"
        )
        lines += [f"    ! {problem}" for problem in check.problems]
        lines += _resource_lines(check)
    return "\n".join(lines)


def _resource_lines(check: AgentHealth) -> list[str]:
    """Runbook steps 2 (resource usage) and 5 (the data causing slow processing)."""
    lines = []
    if check.cpu_ms is not None or check.memory_mb is not None:
        per_call = (
            f", {check.cpu_ms / check.calls:.1f} ms per event" if check.cpu_ms is not None and check.calls else ""
        )
        cpu = f"CPU {check.cpu_ms / 1000:.2f} s{per_call}" if check.cpu_ms is not None else "CPU -"
        memory = f"memory {check.memory_mb:.0f} MiB (worker RSS)" if check.memory_mb is not None else "memory -"
        lines.append(f"    resources: {cpu}; {memory}")
    if check.server and "unreachable" not in check.server and check.server.get("cpu_s") is not None:
        lines.append(
            f"    server process {check.server.get('pid')}: CPU {check.server['cpu_s']:.2f} s, "
            f"memory {check.server.get('memory_mb')} MiB"
        )
    if check.slowest:
        lines.append("    slowest events (id, latency, packet size):")
        lines += [
            f"      {entry['event_id']}  {entry['latency_ms']:.1f} ms  {entry['size_bytes']:,} bytes  {entry['status']}"
            for entry in check.slowest
        ]
    return lines


def _servers_table(reports: dict[str, dict[str, Any]]) -> str:
    lines = []
    for url, report in reports.items():
        if "unreachable" in report:
            lines.append(f"{url}: DOWN ({report['unreachable']})")
            continue
        state = "ok" if report.get("ok") else "NOT OK"
        lines.append(
            f"{url}: {report.get('agent')} {state}; pid {report.get('pid')}, up {report.get('uptime_s')} s, "
            f"restarts {report.get('restarts')}, calls {report.get('calls')}, errors {report.get('errors')}, "
            f"in flight {report.get('in_flight')} (oldest {report.get('oldest_in_flight_s')} s)"
            + (", STUCK" if report.get("stuck") else "")
        )
    return "\n".join(lines)


def _restart(args: argparse.Namespace, _beam_args: list[str]) -> int:
    url = args.url
    if not url:
        spec = load_config(args.config).agents.agents.get(args.name or "")
        if spec is None or spec.kind != "remote":
            print(f"nightwatch: {args.name!r} is not a remote agent in config/agents.yaml: give --url", file=sys.stderr)
            return 2
        url = spec.url
    store = open_store(args)
    try:
        actor = acting_as(args, store, "run_operations")
        record(store, actor, "agents.restart", url, None, None, args.name or "")
    finally:
        store.close()
    try:
        answer = remote.restart(url)
    except requests.RequestException as exc:
        print(f"nightwatch: could not restart the agent server at {url}: {exc}", file=sys.stderr)
        return 1
    print(f"agent server at {url} ({answer.get('agent')}, pid {answer.get('pid')}) is restarting")
    return 0


def _interrupt(*_args: Any) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace, _beam_args: list[str]) -> int:
    # The agents' catalogues (SciPy) are loaded only by the command that serves one: the others start fast.
    from agents.server import make_server

    config = load_config(args.config)
    server = make_server(args.name, config, args.host, args.port, store_url(args))
    serve_metrics(args)  # also on the server's own GET /metrics
    signal.signal(signal.SIGTERM, _interrupt)  # kubectl and docker stop end the server cleanly, like Ctrl-C
    agent = server.service.agent
    print(
        f"agent server: {agent.name} ({agent.kind}, budget {agent.spec.budget_ms} ms) on "
        f"http://{args.host}:{server.server_address[1]}  (POST /v1/agents/{agent.name}/find, GET /health)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        agent.close()
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "agent-server",
        help="run one configured agent as an HTTP service (a member of the agent pool)",
        description="Serves the agent NAME of config/agents.yaml (an in-process kind: crossmatch, history, "
        "followup) over HTTP for remote agents to call. Restart it with `nightwatch agents restart`.",
    )
    serve.add_argument("name", help="the agent to serve, as named in config/agents.yaml")
    serve.add_argument("--port", type=int, default=8601, help="port (default 8601; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 in a pod)")
    metrics_option(serve)
    store_options(serve)
    serve.set_defaults(handler=_serve)

    agents = commands.add_parser(
        "agents",
        help="agent health (which agent is over its budget?) and restarting a remote agent",
        description="The Agent Timeout runbook's commands.",
    )
    actions = agents.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "health", help="each agent's latency against budget, timeouts, errors, skips and breaker; exit 1 if any is bad"
    )
    check.add_argument("--minutes", type=int, default=15, help="look back this far (default 15)")
    check.add_argument("--url", action="append", help="check this agent server's /health directly (repeatable)")
    check.add_argument("--json", action="store_true", help="print the checks as JSON")
    store_options(check)
    check.set_defaults(handler=_health)
    again = actions.add_parser("restart", help="restart a remote agent's server (it re-executes itself in place)")
    again.add_argument("name", nargs="?", help="a remote agent in config/agents.yaml")
    again.add_argument("--url", help="or the agent server's URL")
    store_options(again)
    identity_options(again, "Operator or above")
    again.set_defaults(handler=_restart)
