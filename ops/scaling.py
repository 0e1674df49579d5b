"""`nightwatch scale advise`: the guide's auto-scaling rules (config/scaling.yaml) applied to the live metrics.

| Metric             | Scale up  | Scale down |
| Queue depth        | > 10,000  | < 1,000    |
| CPU usage          | > 80%     | < 30%      |
| Processing latency | > 2 min   | < 30 s     |

Up when any metric is over its line, by the largest ratio to it (queue 25,000 against 10,000: x2.5); down
only when every known metric is under its line, by at most half. The agent pool follows its agents'
latency p95 against their budgets the same way. Dataflow autoscales by itself (THROUGHPUT_BASED, up to
--max-workers); the advice is for the Kubernetes deployments in deploy/ and for a Flink cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from config.scaling import Rules, load_scaling

AGENT_DOWN_SHARE = 0.3  # agents using under 30% of their budget are over-provisioned, like CPU under 30%


@dataclass
class Metrics:
    queue_depth: float | None = None
    cpu_percent: float | None = None
    latency_p50_s: float | None = None
    agent_p95_share: dict[str, float] = field(default_factory=dict)  # agent -> latency p95 / budget


@dataclass
class Advice:
    deployment: str
    current: int
    recommended: int
    direction: str  # up | down | hold
    reasons: list[str]

    @property
    def command(self) -> str:
        return f"kubectl scale deployment {self.deployment} --replicas={self.recommended}"


def _decide(
    deployment: str,
    current: int,
    ups: list[tuple[float, str]],
    downs: list[tuple[float, str]],
    known: int,
    holds: list[str],
    maximum: int,
) -> Advice:
    if ups:
        factor = max(ratio for ratio, _ in ups)
        target = min(maximum, max(current + 1, math.ceil(current * factor)))
        return Advice(
            deployment,
            current,
            target,
            "up" if target > current else "hold",
            [why for _, why in ups] + ([] if target > current else [f"already at the maximum {maximum}"]),
        )
    if known and len(downs) == known:
        factor = max(0.5, max(ratio for ratio, _ in downs))
        target = max(1, min(current - 1, math.ceil(current * factor)))
        return Advice(deployment, current, target, "down" if target < current else "hold", [why for _, why in downs])
    return Advice(deployment, current, current, "hold", holds or ["no metrics to act on"])


def advise(
    metrics: Metrics, processors: int, agents: int, maximum: int = 100, rules: Rules | None = None
) -> list[Advice]:
    """The advice for both deployments; the lines are config/scaling.yaml's (the guide's table)."""
    rules = rules or load_scaling().rules
    ups: list[tuple[float, str]] = []
    downs: list[tuple[float, str]] = []
    holds: list[str] = []
    known = 0
    checks = (
        ("queue depth", metrics.queue_depth, rules.queue_depth.up, rules.queue_depth.down, "{:,.0f}"),
        ("CPU", metrics.cpu_percent, rules.cpu_percent.up, rules.cpu_percent.down, "{:.0f}%"),
        ("latency p50", metrics.latency_p50_s, rules.latency_s.up, rules.latency_s.down, "{:.0f} s"),
    )
    for name, value, up, down, shown in checks:
        if value is None:
            continue
        known += 1
        text = shown.format(value)
        if value > up:
            ups.append((value / up, f"{name} {text} > {shown.format(up)}"))
        elif value < down:
            # Scale so the busiest metric would sit near its up line, never below half.
            downs.append((value / up, f"{name} {text} < {shown.format(down)}"))
        else:
            holds.append(f"{name} {text} within {shown.format(down)}..{shown.format(up)}")
    advice = [_decide("event-processor", processors, ups, downs, known, holds, maximum)]

    agent_ups = [
        (share, f"agent {name} p95 at {share:.0%} of its budget")
        for name, share in metrics.agent_p95_share.items()
        if share > 1.0
    ]
    agent_downs = [
        (max(share, 0.5), f"agent {name} p95 at {share:.0%} of its budget")
        for name, share in metrics.agent_p95_share.items()
        if share < AGENT_DOWN_SHARE
    ]
    agent_holds = [
        f"agent {name} p95 at {share:.0%} of its budget"
        for name, share in metrics.agent_p95_share.items()
        if AGENT_DOWN_SHARE <= share <= 1.0
    ]
    advice.append(
        _decide("agent-pool", agents, agent_ups, agent_downs, len(metrics.agent_p95_share), agent_holds, maximum)
    )
    return advice
