"""Environment overrides, read in one place: every `NIGHTWATCH_*` variable Nightwatch itself reads.

`environment()` reads them afresh on each call (a test or an operator may change them between runs). An empty
variable counts as unset. Secrets the configuration names by variable (a channel's `url_env`, ...) are looked
up by that name where they are used, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIGHTWATCH_", env_ignore_empty=True, extra="ignore")

    config_dir: Path | None = None
    """NIGHTWATCH_CONFIG_DIR: the configuration folder (else the shipped config/)."""
    db_url: str | None = None
    """NIGHTWATCH_DB_URL: the hot store's URL (else OUTPUT/nightwatch.db), when no --db-url is given."""
    output: str = "out"
    """NIGHTWATCH_OUTPUT: the console's output folder when it is not given after `--`."""
    agent_token: str | None = None
    """NIGHTWATCH_AGENT_TOKEN: the bearer token the agent server's restart endpoint requires (else its token file)."""
    agent_token_file: Path | None = None
    """NIGHTWATCH_AGENT_TOKEN_FILE: where the agent server keeps a generated token (else beside the hot store)."""
    admin_password: str | None = None
    """NIGHTWATCH_ADMIN_PASSWORD: the first Super Admin's password for `nightwatch users bootstrap` (else generated)."""
    log_format: Literal["text", "json"] | None = None
    """NIGHTWATCH_LOG_FORMAT: `json` for one JSON line per log event, `text` for readable lines (default: text;
    `--log-json` on the command line also turns JSON on)."""
    metrics_addr: str = "127.0.0.1"
    """NIGHTWATCH_METRICS_ADDR: the address a `--metrics-port` server binds (0.0.0.0 in a container)."""
    metrics_port: int | None = None
    """NIGHTWATCH_METRICS_PORT: the Prometheus port of the console (Streamlit takes no options of ours) and of a
    production runner's workers (set in their environment); the commands take `--metrics-port`."""
    agent_restarts: int = 0
    """NIGHTWATCH_AGENT_RESTARTS: how often the agent server restarted itself (set by the server for its new self)."""
    session_secret: str | None = None
    """NIGHTWATCH_SESSION_SECRET: the key console session tokens are signed with (else one kept in the hot store)."""
    session_hours: float = 12.0
    """NIGHTWATCH_SESSION_HOURS: how long a console session (kept across a browser reload) lasts, hours."""
    console_refresh_s: int = 30
    """NIGHTWATCH_CONSOLE_REFRESH_S: how often the alert portal refreshes (list, counters, timers), seconds."""
    config_history: Path | None = None
    """NIGHTWATCH_CONFIG_HISTORY: the Git repository of the configuration's history (else config-history/ beside the
    SQLite hot store, or under NIGHTWATCH_OUTPUT)."""
    config_history_remote: str | None = None
    """NIGHTWATCH_CONFIG_HISTORY_REMOTE: where each configuration commit is pushed too (a path or a Git URL)."""


def environment() -> Environment:
    return Environment()
