"""Thresholds: change a filter cut or a classification rule's condition, validated, previewed on recent events,
then published as a new live version that running pipelines pick up (store.thresholds.ThresholdStore)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from access.accounts import User
from config.settings import SOURCES
from dashboard import context, ui
from dashboard.preview import preview, recent_events
from ops import tuning
from store.thresholds import ThresholdStore, with_cut_value, with_rule_condition

OPS = ["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "not_between"]
PREVIEW_EVENTS = 2000


def _value(text: str) -> Any:
    """A typed value, read as YAML so 0.7, true and [0, 12] all work (as on the command line)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot read {text!r}: {exc}") from None


def _in_force() -> tuple[Any, Any]:
    versions = ThresholdStore(context.store())
    config = context.config()
    return versions.latest("filters") or config.filters, versions.latest("classification") or config.classification


def _proposal(filters: Any, rules: Any) -> tuple[Any, Any, str] | None:
    """The proposed (filters, rules, description) from the form, or None with the validation error shown."""
    kind = st.radio("Change", ["Filter cut", "Classification rule"], horizontal=True, key="th_kind")
    try:
        if kind == "Filter cut":
            source = st.selectbox("Source", SOURCES, key="th_source")
            cuts = filters.cuts_for(source)
            if not cuts:
                st.info(f"{source} has no cuts.")
                return None
            name = st.selectbox("Cut", [cut.name for cut in cuts], key="th_cut")
            cut = next(cut for cut in cuts if cut.name == name)
            st.caption(f"In force: `{cut.field} {cut.op} {cut.value!r}` — rejects with “{cut.reason}”.")
            text = st.text_input("New value", value=yaml.safe_dump(cut.value).strip().removesuffix("..."), key="th_val")
            changed = with_cut_value(filters, source, name, _value(text))
            return changed, rules, f"cut {source}.{name}: {cut.value!r} -> {_value(text)!r}"
        rule_name = st.selectbox("Rule", [rule.name for rule in rules.rules], key="th_rule")
        rule = next(rule for rule in rules.rules if rule.name == rule_name)
        st.caption(
            f"In force: → {rule.event_class} ({rule.score}) when "
            + ", ".join(f"`{field} {cond.op} {cond.value!r}`" for field, cond in rule.when.items())
        )
        fields = list(rule.when)
        field = st.selectbox("Condition on", fields, key="th_field")
        current = rule.when[field]
        op = st.selectbox("Operator", OPS, index=OPS.index(current.op), key="th_op")
        text = st.text_input("Value", value=yaml.safe_dump(current.value).strip().removesuffix("..."), key="th_rval")
        changed_rules = with_rule_condition(rules, rule_name, field, op, _value(text))
        return filters, changed_rules, f"rule {rule_name}: {field} {op} {_value(text)!r}"
    except ValueError as exc:
        st.error(f"Invalid: {exc}")
        return None


def _show_preview(filters: Any, rules: Any, new_filters: Any, new_rules: Any) -> None:
    recent = recent_events(context.store(), PREVIEW_EVENTS)
    result = preview(recent, filters, rules, new_filters, new_rules)
    st.markdown(f"**Preview over the {result.considered} most recent events: {len(result.changed)} change class.**")
    classes = sorted(set(result.before_counts) | set(result.after_counts))
    st.dataframe(
        pd.DataFrame(
            [
                {"class": name, "now": result.before_counts[name], "with the change": result.after_counts[name]}
                for name in classes
            ]
        ),
        hide_index=True,
    )
    if result.changed:
        st.dataframe(
            pd.DataFrame(
                [{"from": before, "to": after, "events": n} for (before, after), n in result.transitions.items()]
            ),
            hide_index=True,
        )
        st.dataframe(pd.DataFrame(result.changed[:200]), hide_index=True, width="stretch")


def render(user: User) -> None:
    st.title("Thresholds")
    filters, rules = _in_force()
    st.caption(
        f"In force: filters {filters.version}, rules {rules.version}. A published change reaches running "
        "pipelines within seconds (live thresholds)."
    )
    proposal = _proposal(filters, rules)
    allowed = user.can("adjust_thresholds")
    if proposal is not None:
        new_filters, new_rules, description = proposal
        if st.button("Preview the effect on recent events", key="th_preview"):
            _show_preview(filters, rules, new_filters, new_rules)
        note = st.text_input("Why (required, recorded with the version)", key="th_note")
        if st.button("Publish", type="primary", key="th_publish", disabled=not allowed):
            changed_filters = new_filters is not filters
            model, replacing = (new_filters, filters) if changed_filters else (new_rules, rules)
            ui.run_action(
                lambda: tuning.publish_thresholds(context.store(), user.name, model, replacing, note),
                lambda version: f"Published version {version}: {description}",
            )
        if not allowed:
            st.caption("Adjusting thresholds needs the Operator role.")
    st.subheader("History")
    history = ThresholdStore(context.store()).history(20)
    if history:
        st.dataframe(pd.DataFrame(history), hide_index=True, width="stretch")
    else:
        st.caption("No live version yet: the shipped configuration is in force.")
