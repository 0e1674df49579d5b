"""A simulated night that looks like a night: sources in the proportions of their configured rates
(config/sources.yaml), and the classes in the proportions a real stream has, so a normal night gives a handful
of alerts, not hundreds.

Real surveys: of ZTF's ~1 million alerts a night a few dozen are worth a human's look at once, and most of
Rubin's 10 million are variables and artefacts; satellites send about one trigger every ten minutes (0.1/min),
most of them Fermi GBM circles of several degrees. The alerting share here (2 in 10,000 optical packets) makes a
handful of alerts in the few minutes of night a demo runs; a whole night at the configured rates would need a
share nearer 1 in 100,000 to stay under the guide's 50 a night. The design weights (`designed.CLASS_WEIGHTS`)
stay for tests and the injection test, which need every class often.

The incidents (`INCIDENTS`) are the guide's abnormal cases, made on purpose:
  silent-source  the biggest source (by configured rate) sends nothing: its event rate -100%.
  bad-data       a share (5%) of one source's packets is corrupt: error rate far over 0.1%.
  backlog        a visit far larger than the job drains in a minute: queue depth over 10,000, latency up.
  alert-storm    a source's classes as if its thresholds were wrong (a third alerting): over 50 alerts.
"""

from __future__ import annotations

from devtools.simulator.gcn import GCN_CLASS_WEIGHTS

# Per source, the shares a real night's stream has (the satellites' as designed: real notices).
NIGHT_CLASS_WEIGHTS: dict[str, dict[str, float]] = {
    "ztf": {"significant": 0.0002, "interesting": 0.005, "routine": 0.79, "rejected": 0.2048},
    "rubin": {"significant": 0.0002, "interesting": 0.005, "routine": 0.75, "rejected": 0.2448},
    "gcn": dict(GCN_CLASS_WEIGHTS),
}
STORM_CLASS_WEIGHTS: dict[str, float] = {"significant": 0.35, "interesting": 0.1, "routine": 0.4, "rejected": 0.15}

INCIDENTS = ("silent-source", "bad-data", "backlog", "alert-storm")
BAD_DATA_FRACTION = 0.05
BACKLOG_PACKETS = 12_000  # over the guide's queue depth of 10,000


def night_mix(expected_per_min: dict[str, float]) -> dict[str, float]:
    """Each source's share of the packets: its configured rate over the total."""
    total = sum(expected_per_min.values())
    if total <= 0:
        raise ValueError("no source expects any events (config/sources.yaml expected_rate_per_min)")
    return {source: rate / total for source, rate in expected_per_min.items()}


def night_rate_per_s(expected_per_min: dict[str, float]) -> float:
    """The whole night's packets per second at the configured rates."""
    return sum(expected_per_min.values()) / 60.0


def loudest(expected_per_min: dict[str, float]) -> str:
    return max(expected_per_min, key=lambda source: expected_per_min[source])


def check_incident(incident: str | None) -> str | None:
    if incident is not None and incident not in INCIDENTS:
        raise ValueError(f"unknown incident {incident!r}; known: {', '.join(INCIDENTS)}")
    return incident
