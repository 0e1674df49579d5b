"""The NIGHTWATCH_* environment overrides are read in one place (config/environment.py)."""

from __future__ import annotations

import re
from pathlib import Path

from config.environment import environment
from config.settings import CONFIG_DIR, load_config
from store.layout import Outputs

ROOT = Path(__file__).resolve().parents[1]


def test_defaults(monkeypatch):
    for name in ("CONFIG_DIR", "DB_URL", "OUTPUT", "AGENT_TOKEN", "AGENT_RESTARTS", "ADMIN_PASSWORD"):
        monkeypatch.delenv(f"NIGHTWATCH_{name}", raising=False)
    env = environment()
    assert (env.config_dir, env.db_url, env.output, env.agent_token, env.agent_restarts) == (None, None, "out", None, 0)
    assert Outputs.under("somewhere", None).db_url.endswith("somewhere/nightwatch.db")


def test_overrides_and_empty_means_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("NIGHTWATCH_DB_URL", "sqlite:///" + str(tmp_path / "x.db"))
    monkeypatch.setenv("NIGHTWATCH_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("NIGHTWATCH_AGENT_RESTARTS", "2")
    monkeypatch.setenv("NIGHTWATCH_OUTPUT", "")
    env = environment()
    assert env.config_dir == tmp_path and env.agent_restarts == 2 and env.output == "out"
    assert Outputs.under("out", None).db_url == env.db_url
    assert Outputs.under("out", "sqlite:///given.db").db_url == "sqlite:///given.db"  # a flag wins
    # The override folder is read (a changed file changes the fingerprint); missing files come from config/.
    (tmp_path / "filters.yaml").write_text((CONFIG_DIR / "filters.yaml").read_text() + "\n# changed\n")
    assert load_config().fingerprint != load_config(CONFIG_DIR).fingerprint
    (tmp_path / "filters.yaml").unlink()
    assert load_config().fingerprint == load_config(CONFIG_DIR).fingerprint


def test_no_module_reads_nightwatch_variables_by_hand():
    pattern = re.compile(r"os\.(environ|getenv)[^\n]*NIGHTWATCH_|getenv\(\s*\"NIGHTWATCH_")
    found = []
    for package in (
        "config",
        "core",
        "store",
        "ops",
        "access",
        "pipeline",
        "agents",
        "dashboard",
        "api",
        "transforms",
        "cli",
    ):
        for path in (ROOT / package).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            if pattern.search(path.read_text()):
                found.append(relative)
    assert not found, f"read NIGHTWATCH_* through config.environment instead: {found}"
