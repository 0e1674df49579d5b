"""Maintenance: the last full system tests and deployments, step by step with their evidence, and the releases of
the rules and cuts (read only: the procedures run from the command line, `nightwatch system-test|deploy|release`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from access.accounts import User
from dashboard import context
from ops.procedure import RunRecord, last_runs
from store.releases import ReleaseStore


def _run(record: RunRecord, expanded: bool) -> None:
    verdict = {True: "PASSED", False: "FAILED", None: "RUNNING"}[record.passed]
    title = f"{verdict}: {record.run_id} by {record.actor}, {record.started_at:%Y-%m-%d %H:%M} UTC"
    with st.expander(title, expanded=expanded):
        rows = [
            {
                "step": step["name"],
                "result": "skipped" if step["skipped"] else ("passed" if step["passed"] else "FAILED"),
                "seconds": round(step["seconds"], 1),
                "evidence": step["evidence"],
            }
            for step in record.steps
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render(user: User) -> None:
    st.title("Maintenance")
    store = context.store()
    st.subheader("Full system test")
    tests = last_runs(store, "system_test", limit=5)
    if not tests:
        st.info("No system test has run yet: `nightwatch system-test --as USER` (the guide's quarterly test).")
    for index, record in enumerate(tests):
        _run(record, expanded=index == 0)
    st.subheader("Deployments")
    deployments = last_runs(store, "deploy", limit=5)
    if not deployments:
        st.caption("No deployment recorded: `nightwatch deploy --as USER`.")
    for index, record in enumerate(deployments):
        _run(record, expanded=index == 0 and not tests)
    st.subheader("Releases of the rules and cuts")
    releases = ReleaseStore(store).list()
    if not releases:
        st.caption("No release registered: `nightwatch release register ...`.")
    else:
        rows = [
            {
                "release": r.release_id,
                "kind": r.kind,
                "version": r.label,
                "status": r.status + (f" ({r.share:.0%})" if r.share else ""),
                "by": r.author,
                "notes": r.notes,
            }
            for r in releases
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
