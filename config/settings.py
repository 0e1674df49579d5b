"""The whole configuration: `NightwatchConfig` and the loader that reads and validates every YAML file.

The models live in one module per concern (config/decisions.py, sources.py, retention.py, streaming.py, agents.py,
notifications.py, oncall.py, maintenance.py, endpoints.py); they are imported here, so `config.settings` also names
them all.
Every file carries a `version`; the filter and rules versions are recorded on each event they decide.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.agents import (  # noqa: F401 - re-exported for callers
    BUILTIN_AGENT_KINDS,
    AgentsConfig,
    AgentSpec,
    BreakerSpec,
)
from config.base import (  # noqa: F401 - re-exported for callers
    CLASSES,
    CONFIG_DIR,
    SOURCES,
    WEEKDAYS,
    ConfigError,
    Op,
    Strict,
    only_known_sources,
    parse_duration_hours,
)
from config.decisions import (  # noqa: F401 - re-exported for callers
    ClassificationConfig,
    Condition,
    Cut,
    DefaultClass,
    FiltersConfig,
    Rule,
)
from config.endpoints import (  # noqa: F401 - re-exported for callers
    Endpoint,
    EndpointsConfig,
)
from config.environment import environment
from config.limits import (  # noqa: F401 - re-exported for callers
    ApiLimits,
    InputLimits,
    LimitsConfig,
    LoginLimits,
)
from config.maintenance import (  # noqa: F401 - re-exported for callers
    MaintenanceConfig,
    WindowType,
)
from config.notifications import (  # noqa: F401 - re-exported for callers
    LEVELS,
    PAGERDUTY_EVENTS_URL,
    ChannelSpec,
    DigestSpec,
    LevelPolicy,
    NotificationsConfig,
    RetrySpec,
    clock,
)
from config.oncall import (  # noqa: F401 - re-exported for callers
    BusinessHours,
    EscalationSpec,
    EscalationStep,
    OnCallConfig,
    Person,
    RotaRole,
)
from config.retention import (  # noqa: F401 - re-exported for callers
    Retention,
    RetentionConfig,
)
from config.sources import (  # noqa: F401 - re-exported for callers
    Site,
    SourceContact,
    SourcesConfig,
    SourceSpec,
)
from config.streaming import (  # noqa: F401 - re-exported for callers
    AssociationSpec,
    PubSubSpec,
    StreamingConfig,
    ThresholdRefresh,
    WindowSpec,
)


class NightwatchConfig(Strict):
    """Everything the pipeline reads from config/, plus a fingerprint of the files it came from."""

    sources: SourcesConfig
    filters: FiltersConfig
    classification: ClassificationConfig
    retention: RetentionConfig
    streaming: StreamingConfig
    agents: AgentsConfig
    notifications: NotificationsConfig
    oncall: OnCallConfig
    maintenance: MaintenanceConfig
    limits: LimitsConfig = LimitsConfig()
    endpoints: EndpointsConfig
    fingerprint: str


_FILES = {
    "sources": ("sources.yaml", SourcesConfig),
    "filters": ("filters.yaml", FiltersConfig),
    "classification": ("classification.yaml", ClassificationConfig),
    "retention": ("retention.yaml", RetentionConfig),
    "streaming": ("streaming.yaml", StreamingConfig),
    "agents": ("agents.yaml", AgentsConfig),
    "notifications": ("notifications.yaml", NotificationsConfig),
    "oncall": ("oncall.yaml", OnCallConfig),
    "maintenance": ("maintenance.yaml", MaintenanceConfig),
    "limits": ("limits.yaml", LimitsConfig),
    "endpoints": ("endpoints.yaml", EndpointsConfig),
}


def load_config(config_dir: str | Path | None = None) -> NightwatchConfig:
    """Read and validate every YAML file; a bad file raises ConfigError naming the file and field.

    The folder is `config_dir`, else $NIGHTWATCH_CONFIG_DIR, else the shipped defaults.
    """
    folder = Path(config_dir or environment().config_dir or CONFIG_DIR)
    if not folder.is_dir():  # a mistyped folder must not quietly mean the shipped defaults
        raise ConfigError(f"{folder}: no such configuration folder")
    parts: dict[str, Any] = {}
    digest = hashlib.sha256()
    for key, (file_name, model) in _FILES.items():
        path = folder / file_name
        if not path.is_file():
            path = CONFIG_DIR / file_name  # a partial override folder falls back to the defaults
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
        try:
            parts[key] = model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{path}: invalid configuration: {problems}") from exc
        digest.update(text.encode("utf-8"))
    return NightwatchConfig(**parts, fingerprint=digest.hexdigest()[:12])
