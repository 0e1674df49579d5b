"""System configuration (Admin): versioned documents — sources and expected rates, notification channels, agent
budgets — edited as YAML, validated by their pydantic models, stored in the hot store and audited."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from access.accounts import User
from dashboard import context, ui
from ops import sysconfig


def render(user: User) -> None:
    st.title("System configuration")
    kinds = list(sysconfig.REGISTRY)
    kind = st.selectbox("Document", kinds, format_func=lambda name: sysconfig.REGISTRY[name].title, key="cfg_kind")
    store = context.store()
    current = sysconfig.current(store, kind)
    origin = f"version {current.version} by {current.author}" if current.version else f"shipped ({current.note})"
    st.caption(f"In force: {origin}. Validated by `{sysconfig.REGISTRY[kind].model.__name__}`.")
    text = st.text_area(
        "Document (YAML)", value=yaml.safe_dump(current.data, sort_keys=False), height=360, key=f"cfg_text:{kind}"
    )
    note = st.text_input("What changes and why (required)", key=f"cfg_note:{kind}")
    left, right = st.columns(2)
    if left.button("Validate", key="cfg_validate"):
        try:
            sysconfig.parse_yaml(kind, text)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.success("Valid.")
    if right.button("Save as a new version", type="primary", key="cfg_save", disabled=not user.can("configure_system")):

        def save() -> sysconfig.Document:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"not valid YAML: {exc}") from None
            return sysconfig.save(store, user.name, kind, data, note)

        ui.run_action(save, lambda document: f"Saved {kind} version {document.version}.")
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
    else:
        st.caption("No stored version yet: the shipped document is in force.")
