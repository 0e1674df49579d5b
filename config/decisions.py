"""The decisions' configuration: quality cuts (filters.yaml) and classification rules (classification.yaml)."""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from config.base import CLASSES, Op, Strict


class Condition(Strict):
    """One comparison of an event value against a configured value."""

    op: Op
    value: Any

    @model_validator(mode="after")
    def _check_value(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        if self.op in ("between", "not_between"):
            if not (isinstance(self.value, list) and len(self.value) == 2):
                raise ValueError(f"op {self.op!r} needs a [low, high] value")
        if self.op in ("<", "<=", ">", ">=") and not isinstance(self.value, (int, float)):
            raise ValueError(f"op {self.op!r} needs a number")
        return self

    def holds(self, actual: Any) -> bool:
        """Whether the actual value satisfies the condition; a missing or NaN value never does."""
        if actual is None or (isinstance(actual, float) and math.isnan(actual)):
            return False
        op, value = self.op, self.value
        try:
            if op == "==":
                return actual == value
            if op == "!=":
                return actual != value
            if op == "in":
                return actual in value
            if op == "not_in":
                return actual not in value
            if op == "<":
                return actual < value
            if op == "<=":
                return actual <= value
            if op == ">":
                return actual > value
            if op == ">=":
                return actual >= value
            low, high = value
            inside = low <= actual <= high
            return inside if op == "between" else not inside
        except TypeError:
            return False

    def describe(self) -> str:
        return f"{self.op} {self.value!r}"


class Cut(Strict):
    """A per-source quality cut: an event must satisfy it or be rejected with `reason`."""

    name: str
    field: str
    op: Op
    value: Any
    reason: str
    if_missing: Literal["pass", "reject"] = "pass"

    @model_validator(mode="after")
    def _valid_condition(self) -> Cut:
        self.condition  # noqa: B018 - builds and so validates op and value together
        return self

    @cached_property
    def condition(self) -> Condition:
        return Condition(op=self.op, value=self.value)


class FiltersConfig(Strict):
    version: str
    ztf: list[Cut] = Field(default_factory=list)
    rubin: list[Cut] = Field(default_factory=list)
    gcn: list[Cut] = Field(default_factory=list)

    def cuts_for(self, source: str) -> list[Cut]:
        return list(getattr(self, source, []) or [])


class Rule(Strict):
    """A classification rule: every condition in `when` must hold for the rule to match."""

    name: str
    description: str = ""
    when: dict[str, Condition]
    event_class: str = Field(alias="class")
    score: float = Field(ge=0.0, le=1.0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("when", mode="before")
    @classmethod
    def _expand_shorthand(cls, when: Any) -> Any:
        """`field: value` means `field: {"==": value}`; `field: {op: value}` names the operator."""
        if not isinstance(when, dict) or not when:
            raise ValueError("`when` must be a non-empty mapping of field to condition")
        expanded = {}
        for field_name, spec in when.items():
            if isinstance(spec, dict) and set(spec) == {"op", "value"}:  # the long form, as model_dump writes it
                expanded[field_name] = spec
            elif isinstance(spec, dict):
                if len(spec) != 1:
                    raise ValueError(f"condition on {field_name!r} must have exactly one operator")
                ((op, value),) = spec.items()
                expanded[field_name] = {"op": op, "value": value}
            else:
                expanded[field_name] = {"op": "==", "value": spec}
        return expanded

    @field_validator("event_class")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in CLASSES[:-1]:
            raise ValueError(f"class must be one of {CLASSES[:-1]} (rejected comes from the filter)")
        return value


class DefaultClass(Strict):
    event_class: str = Field(alias="class")
    score: float = Field(ge=0.0, le=1.0)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ClassificationConfig(Strict):
    version: str
    default: DefaultClass
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_names(self) -> ClassificationConfig:
        names = [rule.name for rule in self.rules]
        duplicated = {name for name in names if names.count(name) > 1}
        if duplicated:
            raise ValueError(f"rule names must be unique, repeated: {sorted(duplicated)}")
        return self
