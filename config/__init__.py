"""Nightwatch configuration: YAML files in this folder, validated by the pydantic models in settings."""

from config.settings import (
    ClassificationConfig,
    Condition,
    Cut,
    FiltersConfig,
    NightwatchConfig,
    RetentionConfig,
    SourcesConfig,
    load_config,
)

__all__ = [
    "ClassificationConfig",
    "Condition",
    "Cut",
    "FiltersConfig",
    "NightwatchConfig",
    "RetentionConfig",
    "SourcesConfig",
    "load_config",
]
