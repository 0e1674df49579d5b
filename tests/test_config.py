"""Configuration: the shipped files load; a bad file is refused with its path and the field at fault."""

from __future__ import annotations

import math

import pytest

from config.settings import CONFIG_DIR, ConfigError, load_config, parse_duration_hours


def test_shipped_configuration_loads():
    config = load_config()
    assert config.filters.cuts_for("ztf") and config.filters.cuts_for("rubin") and config.filters.cuts_for("gcn")
    assert [rule.event_class for rule in config.classification.rules][0] == "critical"
    assert set(config.retention.classes) == {"critical", "significant", "interesting", "routine", "rejected"}
    assert len(config.fingerprint) == 12


def write(folder, name, text):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        (
            "classification.yaml",
            "version: x\ndefault: {class: routine, score: 0.1}\nrules:\n"
            "  - {name: a, when: {source: gcn}, class: rejected, score: 0.5}\n",
            "rules.0.class",
        ),
        (
            "classification.yaml",
            "version: x\ndefault: {class: routine, score: 0.1}\nrules:\n"
            "  - {name: a, when: {source: gcn}, class: critical, score: 0.5}\n"
            "  - {name: a, when: {source: ztf}, class: routine, score: 0.5}\n",
            "rule names must be unique",
        ),
        (
            "classification.yaml",
            "version: x\ndefault: {class: routine, score: 0.1}\nrules:\n"
            "  - {name: a, when: {mag: {'<=': bright}}, class: critical, score: 0.5}\n",
            "needs a number",
        ),
        ("classification.yaml", "version: x\ndefault: {class: routine, score: 3}\nrules: []\n", "default.score"),
        (
            "sources.yaml",
            (CONFIG_DIR / "sources.yaml").read_text().replace("America/Santiago", "Mars/Olympus"),
            "unknown time zone",
        ),
        (
            "retention.yaml",
            (CONFIG_DIR / "retention.yaml").read_text().replace("hot: 90d", "hot: ninety days"),
            "bad duration",
        ),
        ("retention.yaml", "version: 1\nclasses: {}\n", "retention missing for classes"),
        ("filters.yaml", "version: 1\nztf: [{name: x, field: rb, op: between, value: 3, reason: r}]\n", "[low, high]"),
        ("filters.yaml", "version: 1\nztf: [\n", "cannot read YAML"),
    ],
)
def test_bad_configuration_is_refused_with_the_reason(tmp_path, name, text, words):
    folder = write(tmp_path / "cfg", name, text)
    with pytest.raises(ConfigError) as error:
        load_config(folder)
    assert name in str(error.value) and words in str(error.value)


def test_partial_override_falls_back_to_shipped_files(tmp_path):
    text = (CONFIG_DIR / "filters.yaml").read_text().replace("value: 0.55", "value: 0.65")
    config = load_config(write(tmp_path / "cfg", "filters.yaml", text))
    assert config.filters.cuts_for("ztf")[0].value == 0.65
    assert config.classification == load_config().classification
    assert config.fingerprint != load_config().fingerprint


def test_durations():
    assert parse_duration_hours("24h") == 24
    assert parse_duration_hours("90d") == 2160
    assert parse_duration_hours("permanent") == math.inf
    assert parse_duration_hours("none") is None
