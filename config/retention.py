"""The guide's retention table (retention.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from config.base import CLASSES, Strict, parse_duration_hours


class Retention(Strict):
    hot: str
    warm: str
    archive: Literal["keep", "none"]

    @field_validator("hot", "warm")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration_hours(value)
        return value


class RetentionConfig(Strict):
    version: str
    classes: dict[str, Retention]

    @field_validator("classes")
    @classmethod
    def _every_class(cls, value: dict[str, Retention]) -> dict[str, Retention]:
        missing = set(CLASSES) - set(value)
        if missing:
            raise ValueError(f"retention missing for classes {sorted(missing)}")
        return value
