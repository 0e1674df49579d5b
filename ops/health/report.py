"""What health reports are made of: the guide's normal ranges, runbooks (from `config/runbooks.yaml`), panels,
agent health and the report itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from config.runbooks import RunbooksConfig, load_runbooks

# The guide's normal ranges.
RATE_TOLERANCE = 0.20  # event rate within ±20% of expected
LATENCY_P50_S = 60.0  # processing latency p50 < 1 min
QUEUE_DEPTH = 10_000  # queue depth < 10,000
ERROR_RATE = 0.001  # error rate < 0.1%
ALERTS_PER_NIGHT = 50  # alert volume < 50 a night
# "Major degradation" (SEV-2): this many times beyond the normal range.
MAJOR_FACTOR = 10
QUEUE_MAJOR_FACTOR = 5
CRITICAL_RECALL = 0.99  # the guide's SEV-2 example: critical recall < 99%
# A rate check needs enough expected events in the window to mean anything: a GCN stream expecting 0.1 a
# minute sees 0 or 3 in 15 minutes by chance alone, which is not a ±20% deviation worth an incident.
MIN_EXPECTED_FOR_RATE = 20
WARN_AT = 0.8  # amber at 80% of a limit

STATUS_ORDER = ("ok", "n/a", "unknown", "warn", "bad")


@dataclass(frozen=True)
class Runbook:
    title: str
    symptoms: str
    steps: tuple[str, ...]
    key: str = ""  # its name in runbooks.yaml: how a report swaps in the configured runbook of the same name
    contacts: tuple[str, ...] = ()  # whom it calls for (contacts.yaml)


def runbooks_of(config: RunbooksConfig) -> dict[str, Runbook]:
    return {
        name: Runbook(spec.title, spec.symptoms, tuple(spec.steps), name, tuple(spec.contacts))
        for name, spec in config.runbooks.items()
    }


# The shipped runbooks, word for word where the guide has them (config/runbooks.yaml): the panels name theirs
# from here; `evaluate` then swaps in the runbooks of the configuration it was given (`--config DIR`).
RUNBOOKS: dict[str, Runbook] = runbooks_of(load_runbooks())


@dataclass
class Panel:
    """One monitoring panel as the guide defines it, evaluated."""

    name: str
    value: float | None
    normal: str
    status: str  # ok | warn | bad | unknown | n/a
    action: str  # the guide's "action if abnormal"
    runbook: Runbook
    by_source: dict[str, float | None] = field(default_factory=dict)
    display: str = ""  # the value as shown, with its unit
    detail: str = ""  # what the figure is and where it comes from
    source_status: dict[str, str] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)  # {"time", "source", "value"} rows for a chart

    @property
    def abnormal(self) -> bool:
        return self.status == "bad"


@dataclass
class AgentHealth:
    """The latest window of each agent (table `agent_metrics`), judged against its latency budget."""

    rows: list[dict[str, Any]]
    series: list[dict[str, Any]]
    status: dict[str, str]
    message: str  # "no agent metrics yet" when there is nothing to show
    runbook: Runbook = RUNBOOKS["agent_timeout"]


@dataclass
class HealthReport:
    now: datetime
    window_start: datetime
    window_end: datetime
    stale: bool  # nothing processed in the recent window: the panels show the last active window
    basis: str  # "stream metrics" | "stored events" | "no data"
    panels: list[Panel]
    agents: AgentHealth
    severity: str | None  # "SEV-1" .. "SEV-4", or None when all is normal
    reason: str
    runbook: Runbook | None = None
    intake_paused: list[str] = field(default_factory=list)  # sources `nightwatch intake pause` stopped
    # Day and night: each source's expectation now ("expected, sending: night at ...", "not expected now: ...").
    schedule: dict[str, str] = field(default_factory=dict)
    intake_note: str = ""  # who paused them, when
    contacts: dict[str, str] = field(default_factory=dict)  # source -> its contact (config/sources.yaml)
    contact_book: dict[str, str] = field(default_factory=dict)  # contacts.yaml: name -> "Operations: #ops-events, ..."
    config_version: int = 0  # the stored configuration version judged with (0: the files alone; store/configs.py)

    def panel(self, name: str) -> Panel:
        return next(panel for panel in self.panels if panel.name == name)


def runbook_contacts(runbook: Runbook, contact_book: dict[str, str], sources: dict[str, str]) -> list[str]:
    """Whom the runbook says to contact, one line each: its contacts (`contact_book`, from contacts.yaml) and,
    when it names the data sources or a step says to contact the source, each source's own contact (`sources`,
    from sources.yaml). A report carries both (`contact_book`, `contacts`)."""
    lines = [contact_book.get(name, name) for name in runbook.contacts]
    if "data_sources" in runbook.contacts or any(
        "contact" in step.lower() and "source" in step.lower() for step in runbook.steps
    ):
        lines += [f"{source} source: {who}" for source, who in sources.items()]
    return lines


def judge(value: float | None, limit: float) -> str:
    """Against an upper limit: ok below 80% of it, warn up to it, bad beyond."""
    if value is None:
        return "unknown"
    if value >= limit:
        return "bad"
    return "warn" if value >= WARN_AT * limit else "ok"


def worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUS_ORDER.index) if statuses else "unknown"
