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
    config_folder,
    only_known_sources,
    parse_duration_hours,
    read_file,
)
from config.contacts import (  # noqa: F401 - re-exported for callers
    ContactsConfig,
    ExternalContact,
    Team,
)
from config.decisions import (  # noqa: F401 - re-exported for callers
    ClassificationConfig,
    Condition,
    Cut,
    DefaultClass,
    FiltersConfig,
    Rule,
)
from config.deploy import DataflowDeploy, DeployConfig, FlinkDeploy  # noqa: F401 - re-exported for callers
from config.endpoints import (  # noqa: F401 - re-exported for callers
    Endpoint,
    EndpointsConfig,
)
from config.environment import environment
from config.incidents import SEVERITIES, IncidentsConfig  # noqa: F401 - re-exported for callers
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
from config.releases import ReleasesConfig  # noqa: F401 - re-exported for callers
from config.retention import (  # noqa: F401 - re-exported for callers
    Retention,
    RetentionConfig,
)
from config.runbooks import RunbooksConfig, RunbookSpec  # noqa: F401 - re-exported for callers
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
    incidents: IncidentsConfig = IncidentsConfig()
    limits: LimitsConfig = LimitsConfig()
    releases: ReleasesConfig
    deploy: DeployConfig
    endpoints: EndpointsConfig
    runbooks: RunbooksConfig
    contacts: ContactsConfig
    fingerprint: str
    # The stored configuration version in force (store/configs.py: the console's and the CLI's documents laid
    # over the files); 0 while the files alone are in force.
    config_version: int = 0


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
    "incidents": ("incidents.yaml", IncidentsConfig),
    "limits": ("limits.yaml", LimitsConfig),
    "releases": ("releases.yaml", ReleasesConfig),
    "deploy": ("deploy.yaml", DeployConfig),
    "endpoints": ("endpoints.yaml", EndpointsConfig),
    "runbooks": ("runbooks.yaml", RunbooksConfig),
    "contacts": ("contacts.yaml", ContactsConfig),
}


def load_config(config_dir: str | Path | None = None) -> NightwatchConfig:
    """Read and validate every YAML file; a bad file raises ConfigError naming the file and field.

    The folder is `config_dir`, else $NIGHTWATCH_CONFIG_DIR, else the shipped defaults.
    """
    folder = config_folder(config_dir, environment().config_dir)
    if not folder.is_dir():  # a mistyped folder must not quietly mean the shipped defaults
        raise ConfigError(f"{folder}: no such configuration folder")
    parts: dict[str, Any] = {}
    digest = hashlib.sha256()
    for key, (file_name, model) in _FILES.items():
        parts[key], text = read_file(folder, file_name, model)
        digest.update(text.encode("utf-8"))
    config = NightwatchConfig(**parts, fingerprint=digest.hexdigest()[:12])
    unknown = sorted(
        {name for book in config.runbooks.runbooks.values() for name in book.contacts} - config.contacts.names()
    )
    if unknown:
        raise ConfigError(f"{folder / 'runbooks.yaml'}: contacts {unknown} are not in contacts.yaml")
    return config
