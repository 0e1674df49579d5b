"""Monitoring: the guide's five panels, agent health and the current severity, refreshed in place."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from access.accounts import User
from core.event import utcnow
from core.night import observing_night
from dashboard import context, ui
from ops.health import AgentHealth, HealthReport, Panel, Runbook, evaluate, runbook_contacts
from ops.health.faults import STALE_PANEL, record_fault
from ops.levels import LevelCount, level_counts
from ops.workers import notifier_status, workers

REFRESH_S = 15


def _runbook(runbook: Runbook) -> None:
    st.markdown(f"**{runbook.title}** — symptoms: {runbook.symptoms}")
    st.markdown("\n".join(f"{number}. {step}" for number, step in enumerate(runbook.steps, 1)))
    config = context.config()
    book = {name: config.contacts.describe(name) for name in config.contacts.names()}
    contacts = runbook_contacts(runbook, book, config.sources.contacts())
    if contacts:  # where the runbook says to contact someone: whom (contacts.yaml, sources.yaml)
        st.markdown("**Contacts:**\n" + "\n".join(f"- {line}" for line in contacts))


def _severity(report: HealthReport) -> None:
    if report.intake_paused:
        st.warning(f"**Intake paused** — {report.intake_note}", icon="⏸️")
    if report.severity is None:
        st.success(f"**No incident.** {report.reason}.")
    else:
        ui.SEVERITY_STYLE[report.severity](f"**{report.severity}** — {report.reason}")
    if report.runbook is not None:
        with st.expander(f"What to do: {report.runbook.title}", expanded=report.severity == "SEV-1"):
            _runbook(report.runbook)
    window = f"{report.window_start:%H:%M:%S}–{report.window_end:%H:%M:%S} UTC"
    stale = " (the last active window: nothing has been processed since)" if report.stale else ""
    st.caption(
        f"Figures over {window}{stale}, from {report.basis}; refreshed every {REFRESH_S} s; judged with "
        f"configuration version {report.config_version or 'files'}."
    )
    if report.schedule:  # day and night: which sources are judged now
        st.caption("Sources: " + "; ".join(f"**{name}** {state}" for name, state in report.schedule.items()))


# How each panel's per-source figures read: a unit and a sensible precision.
UNITS = {
    "Event rate": lambda value: f"{value:,.1f}/min",
    "Processing latency": lambda value: f"{value:,.2f} s",
    "Queue depth": lambda value: f"{value:,.0f} messages",
    "Error rate": lambda value: f"{value:.2%}",
    "Alert volume": lambda value: f"{value:,.0f} alerts",
}
STATUS_WORDS = {"ok": "normal", "warn": "near limit", "bad": "abnormal", "unknown": "no data", "n/a": "n/a"}
STATUS_COLOURS = {
    "normal": "background-color: rgba(33, 195, 84, 0.25)",
    "near limit": "background-color: rgba(255, 165, 0, 0.3)",
    "abnormal": "background-color: rgba(255, 60, 60, 0.3)",
}


def formatted(panel_name: str, value: float | None) -> str:
    return "–" if value is None else UNITS.get(panel_name, lambda v: f"{v:,.3g}")(value)


def timeline(series: list[dict]) -> pd.DataFrame:
    """One row per minute and source, minutes without data left empty (None): the chart shows them as gaps
    instead of drawing a line across them."""
    frame = pd.DataFrame(series)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    wide = frame.pivot_table(index="time", columns="source", values="value", aggfunc="sum")
    wide = wide.resample("1min").sum(min_count=1)  # a missing minute stays NaN
    long = wide.reset_index().melt(id_vars="time", var_name="source", value_name="value")
    long["at (UTC)"] = long["time"].dt.strftime("%Y-%m-%dT%H:%MZ")
    return long


def _chart(panel: Panel) -> None:
    if not panel.series:
        st.caption("No history to chart yet.")
        return
    if panel.name == "Alert volume":
        frame = pd.DataFrame(panel.series)
        st.bar_chart(frame, x="time", y="value", x_label="observing night", y_label="alerts", height=180)
        return
    long = timeline(panel.series)
    if long["time"].nunique() < 3:  # a batch run fills a minute or two: a line through one point draws nothing
        wide = long.pivot_table(index="at (UTC)", columns="source", values="value", aggfunc="sum")
        wide.index = [label[11:16] for label in wide.index]  # HH:MM, 24-hour UTC
        st.bar_chart(wide, height=180, x_label="minute (UTC, 24 h)", stack=False)
        return
    _lines(long)


def _lines(long: pd.DataFrame, y_title: str | None = None) -> None:
    """A line per source over 24-hour UTC time, broken where minutes have no data."""
    chart = (
        alt.Chart(long)
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("time:T", title="time (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%H:%M")),
            y=alt.Y("value:Q", title=y_title),
            color=alt.Color("source:N"),
            tooltip=["at (UTC)", "source", alt.Tooltip("value:Q", format=",.4~g")],
        )
        .properties(height=180)
    )
    st.altair_chart(chart, width="stretch")


def _panel(panel: Panel) -> None:
    with st.container(border=True):
        head, status = st.columns([3, 1])
        head.markdown(f"#### {panel.name}")
        status.markdown(ui.badge(panel.status))
        st.metric(panel.name, panel.display, label_visibility="collapsed")
        st.caption(f"Normal range: {panel.normal}. {panel.detail}.")
        if panel.by_source:
            rows = [
                {
                    "source": source,
                    "value": formatted(panel.name, value),
                    "status": STATUS_WORDS.get(panel.source_status.get(source, ""), ""),
                }
                for source, value in panel.by_source.items()
            ]
            table = pd.DataFrame(rows).style.map(lambda word: STATUS_COLOURS.get(word, ""), subset=["status"])
            st.dataframe(table, hide_index=True, width="stretch")
        _chart(panel)
        label = f"Action if abnormal: {panel.action}"
        with st.expander(label, expanded=panel.abnormal):
            _runbook(panel.runbook)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _agents(agents: AgentHealth) -> None:
    st.subheader("Agent health")
    if agents.message:
        st.info(agents.message)
        return
    rows = [
        {
            "agent": row["agent"],
            "status": STATUS_WORDS.get(agents.status.get(row["agent"], ""), agents.status.get(row["agent"], "")),
            "calls": row.get("calls"),
            "ok": row.get("ok"),
            "timeouts": row.get("timeouts"),
            "errors": row.get("errors"),
            "skips": row.get("skips"),
            "p50 ms": _ms(row.get("latency_p50_ms")),
            "p95 ms": _ms(row.get("latency_p95_ms")),
            "budget ms": row.get("budget_ms"),
            "breaker": row.get("breaker_state"),
            "CPU ms": row.get("cpu_ms"),
            "memory MiB": row.get("memory_mb"),
            "window end": ui.iso(row.get("window_end")),
        }
        for row in agents.rows
    ]
    table = pd.DataFrame(rows).style.map(lambda word: STATUS_COLOURS.get(word, ""), subset=["status"])
    st.dataframe(table, hide_index=True, width="stretch")
    if agents.series:
        series = [{"time": row["time"], "source": row["agent"], "value": row["p95_ms"]} for row in agents.series]
        _lines(timeline(series), "latency p95 (ms)")
    slow = [{"agent": row["agent"], **entry} for row in agents.rows for entry in json.loads(row.get("slowest") or "[]")]
    if slow:
        with st.expander("Slowest events per agent (the data causing slow processing)"):
            st.dataframe(pd.DataFrame(slow), hide_index=True, width="stretch")
    troubled = [name for name, status in agents.status.items() if status != "ok"]
    with st.expander(f"{agents.runbook.title}", expanded=bool(troubled)):
        if troubled:
            st.markdown(f"Agents to look at: **{', '.join(troubled)}**")
        _runbook(agents.runbook)


def _workers() -> None:
    """High queue depth step 1 (worker status) and Critical alert not sent step 1 (is the notifier alive?)."""
    st.subheader("Workers")
    store = context.store()
    service, latest = notifier_status(store)
    if service == "stale":
        st.error(
            f"Alert service down: the notifier's last beat was {latest.age_s:.0f} s ago ({latest.host}): "
            "restart `nightwatch notify run` (Runbook: Critical Alert Not Sent, step 1)"
        )
    elif service == "ok":
        st.caption(f"Alert service: the notifier is running (last beat {latest.age_s:.0f} s ago).")
    else:
        st.caption(f"Alert service: the notifier is {'stopped' if service == 'stopped' else 'not running yet'}.")
    found = workers(store)
    if not found:
        st.info("No job or worker has recorded a heartbeat yet.")
        return
    rows = [
        {
            "worker": w.worker_id,
            "kind": w.kind,
            "state": w.shown_state,
            "last beat (s ago)": round(w.age_s),
            "processed": w.processed,
            "per s": None if w.throughput_per_s is None else round(w.throughput_per_s, 1),
            "backlog": w.backlog,
            "errors": w.errors,
        }
        for w in found
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


TONIGHT = "tonight"


def _night_choice() -> str | None:
    """The night the alert-volume panel shows: tonight (the site's current observing night) unless another
    night is chosen explicitly."""
    now = utcnow()
    tonight = observing_night(now, context.config().sources.site.timezone)
    others = sorted((night for night in context.store().alert_volume_by_night() if night != tonight), reverse=True)
    options = [TONIGHT, *others]
    label = {TONIGHT: f"tonight ({tonight})"}
    chosen = st.selectbox("Alert volume of the night", options, format_func=lambda n: label.get(n, n), key="night")
    return None if chosen == TONIGHT else chosen


def levels_line(counts: dict[str, LevelCount]) -> str:
    """Each level's count as the portal and the API give it (ops.levels): waiting, of how many."""
    return " · ".join(f"**{level}** {count.waiting:,} waiting of {count.total:,}" for level, count in counts.items())


def _levels() -> None:
    st.markdown("Alerts by level (as the alert portal counts them): " + levels_line(level_counts(context.store())))


@st.fragment(run_every=REFRESH_S)
def _live(night: str | None = None) -> None:
    try:
        report = evaluate(context.store(), context.config(), utcnow(), night=night)
    except Exception as exc:  # noqa: BLE001 - the panels cannot refresh: say so, record it (SEV-4)
        detail = f"{type(exc).__name__}: {exc}"
        try:
            record_fault(context.store(), "Monitoring", STALE_PANEL, detail)
        except Exception:  # noqa: BLE001 - the store may be what failed; the page still says so
            pass
        st.warning(f"The panels could not refresh ({detail}): recorded as a console fault (SEV-4).")
        return
    _severity(report)
    _levels()
    columns = st.columns(2)
    for index, panel in enumerate(report.panels):
        with columns[index % 2]:
            _panel(panel)
    _agents(report.agents)
    _workers()


def render(user: User) -> None:
    st.title("Monitoring")
    _live(_night_choice())
