"""Schedule: what runs next (config/schedule.yaml), today's checklist with its owners and who did each item,
and the latest runs with their outcomes (ops/schedule.py; the scheduler or the CronJobs record them)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from access.accounts import User
from config.schedule import load_schedule
from dashboard import context, ui
from ops import schedule


def render(user: User) -> None:
    st.title("Schedule")
    config = load_schedule(context.settings().config_dir)
    store = context.store()

    st.subheader("Today's checklist")
    items = schedule.checklist_today(store, config)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Time (UTC)": item["time"],
                    "Task": item["task"],
                    "Owner": item["owner"],
                    "Check": item["check"],
                    "Done by": item["done_by"] or "",
                    "Done at": ui.when(item["done_at"]) if item["done_at"] else "",
                }
                for item in items
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
    pending = [item for item in items if item["run_id"] and not item["done_by"]]
    if pending and user.can(schedule.DONE_PERMISSION):
        with st.form("checklist_done"):
            chosen = st.selectbox(
                "Mark done", [item["item"] for item in pending], format_func=lambda name: _task(items, name)
            )
            note = st.text_input("Note (what you found)")
            if st.form_submit_button("Done"):
                ui.run_action(
                    lambda: schedule.mark_done(store, user.name, chosen, note or None),
                    lambda marked: f"{_task(items, marked['item'])}: done by {marked['done_by']}",
                )

    st.subheader("Next runs")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When (UTC)": f"{when:%Y-%m-%d %H:%M}",
                    "Entry": job.name,
                    "What": job.task,
                    "Schedule": job.schedule,
                    "Owner": job.owner or "",
                }
                for when, job in schedule.next_runs(config)
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )

    st.subheader("Latest runs")
    runs = schedule.recent_runs(store, 50)
    if not runs:
        st.info("No run recorded yet: start `nightwatch scheduler` (or apply deploy/kubernetes/cronjobs.yaml).")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Started": ui.when(row["started_at"]),
                    "Entry": row["job"],
                    "Outcome": row["outcome"],
                    "Exit": row["exit_code"],
                    "Done by": row["done_by"] or "",
                    "Last line": ((row["detail"] or "").splitlines() or [""])[-1],
                }
                for row in runs
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )


def _task(items: list[dict], name: str) -> str:
    return next((f"{item['time']} {item['task']} ({item['owner']})" for item in items if item["item"] == name), name)
