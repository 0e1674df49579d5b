"""What every configuration model shares: the vocabulary, the strict base model, the error."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

CONFIG_DIR = Path(__file__).resolve().parent
CLASSES = ("critical", "significant", "interesting", "routine", "rejected")
SOURCES = ("ztf", "rubin", "gcn")

Op = Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "not_between"]


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the field."""


def only_known_sources(value: dict[str, Any]) -> dict[str, Any]:
    unknown = set(value) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; known: {SOURCES}")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([hdy])$")


def parse_duration_hours(text: str) -> float | None:
    """'24h' -> 24, '90d' -> 2160, '1y' -> 8766; 'permanent' -> inf; 'none' -> None."""
    text = text.strip().lower()
    if text == "permanent":
        return math.inf
    if text == "none":
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use permanent, none, or a number with h, d or y")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"h": 1, "d": 24, "y": 24 * 365.25}[unit]


def config_folder(config_dir: str | Path | None, env_dir: Path | None) -> Path:
    """The folder configuration is read from: `config_dir`, else $NIGHTWATCH_CONFIG_DIR, else the shipped one."""
    return Path(config_dir or env_dir or CONFIG_DIR)


def read_file(folder: Path, file_name: str, model: type[BaseModel], empty: Any = None) -> tuple[Any, str]:
    """One YAML file of `folder` (else the shipped one) validated by `model`, and its text; a bad file raises
    ConfigError naming the file and the field. `empty` stands for a file with nothing in it."""
    path = folder / file_name
    if not path.is_file():
        path = CONFIG_DIR / file_name  # a partial override folder falls back to the defaults
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
    try:
        return model.model_validate(empty if data is None else data), text
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: invalid configuration: {problems}") from exc


def load_one(config_dir: str | Path | None, file_name: str, model: type[BaseModel]) -> Any:
    """One file of the configuration folder (`config_dir`, else $NIGHTWATCH_CONFIG_DIR, else the shipped one), for
    the commands that need only it (backups, scaling, the schedule); an empty file means the model's defaults."""
    from config.environment import environment  # (environment is read per call: tests and commands set it)

    return read_file(config_folder(config_dir, environment().config_dir), file_name, model, empty={})[0]
