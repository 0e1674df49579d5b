"""Backups of the hot store: snapshots, PostgreSQL base backups with the WAL, locations, restore-to-time."""

from ops.backup.continuous import (  # noqa: F401 - the package's interface
    BackupRun,
    Entry,
    RestoreResult,
    catalog,
    locations_of,
    prune,
    restore_to_time,
    run_backup,
    ship,
)
from ops.backup.locations import Location, LocationError, location  # noqa: F401
from ops.backup.snapshot import backup, export_model_versions, fingerprints, restore  # noqa: F401
