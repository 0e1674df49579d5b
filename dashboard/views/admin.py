"""System configuration (Admin): the documents in force — sources and expected rates, notification channels, agent
budgets, on-call, maintenance, contacts, runbooks — edited as YAML, validated by their pydantic models, stored in
the hot store as new versions, audited, committed to the configuration's Git history; rolled back to any earlier
version or restored from a Git commit. Running jobs, `health`, the notifier and on-call follow within seconds."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from access.accounts import User
from dashboard import context, ui
from ops import confighistory, sysconfig


def render(user: User) -> None:
    st.title("System configuration")
    kinds = list(sysconfig.REGISTRY)
    kind = st.selectbox("Document", kinds, format_func=lambda name: sysconfig.REGISTRY[name].title, key="cfg_kind")
    store, base = context.store(), context.files_config()
    current = sysconfig.current(store, kind, base)
    origin = f"version {current.version} by {current.author}" if current.version else f"the files ({current.note})"
    refresh = base.streaming.thresholds.refresh_s
    st.caption(
        f"In force: {origin}. Validated by `{sysconfig.REGISTRY[kind].model.__name__}`. Running jobs, health, the "
        f"notifier and on-call follow a change within {refresh:g} s."
    )
    text = st.text_area(
        "Document (YAML)", value=yaml.safe_dump(current.data, sort_keys=False), height=360, key=f"cfg_text:{kind}"
    )
    note = st.text_input("What changes and why (required)", key=f"cfg_note:{kind}")
    may = user.can("configure_system")
    left, right = st.columns(2)
    if left.button("Validate", key="cfg_validate"):
        try:
            sysconfig.parse_yaml(kind, text)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.success("Valid.")
    if right.button("Save as a new version", type="primary", key="cfg_save", disabled=not may):

        def save() -> sysconfig.Document:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"not valid YAML: {exc}") from None
            return sysconfig.save(store, user.name, kind, data, note, base)

        ui.run_action(save, lambda document: f"Saved {kind} version {document.version}: in force.")
    st.subheader("Versions")
    versions = sysconfig.history(store, kind)
    if versions:
        st.dataframe(
            pd.DataFrame(
                [{"version": d.version, "author": d.author, "note": d.note, "at": d.created_at} for d in versions]
            ),
            hide_index=True,
            width="stretch",
        )
        earlier = [d.version for d in versions if d.version != current.version]
        if earlier:
            back, why = st.columns(2)
            chosen = back.selectbox("Roll back to version", earlier, key=f"cfg_back:{kind}")
            reason = why.text_input("Why (required)", key=f"cfg_back_note:{kind}")
            if st.button("Roll back", key=f"cfg_rollback:{kind}", disabled=not may):
                ui.run_action(
                    lambda: sysconfig.rollback(store, user.name, kind, int(chosen), reason, base),
                    lambda document: f"Rolled {kind} back to version {chosen}: in force as version {document.version}.",
                )
    else:
        st.caption("No stored version yet: the configuration folder's file is in force.")
    _git_history(user, store, base)


def _git_history(user: User, store, base) -> None:  # noqa: ANN001 - the console's store and configuration
    st.subheader("Git history")
    changes = confighistory.history(store, limit=30)
    st.caption(
        f"Every change of the configuration in force, committed with its author and reason: "
        f"`{confighistory.history_dir(store)}`."
    )
    if not changes:
        st.caption("No commit yet: the first change (or `nightwatch config history`) makes one.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "commit": c.commit[:12],
                    "author": c.author,
                    "at": c.at,
                    "reason": c.message,
                    "changed": ", ".join(c.files),
                }
                for c in changes
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns(2)
    commit = left.selectbox("Restore the configuration of commit", [c.commit[:12] for c in changes], key="cfg_git")
    reason = right.text_input("Why (required)", key="cfg_git_note")
    if st.button("Restore", key="cfg_restore", disabled=not user.can("configure_system")):
        ui.run_action(
            lambda: sysconfig.restore(store, user.name, commit, reason, base),
            lambda result: f"Restored {result[0][:12]}: {len(result[1])} document(s) stored, in force.",
        )
