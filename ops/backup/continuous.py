"""One backup run (take, ship the WAL, copy to Region B, prune) and restore-to-time, over backup locations.

A location holds each backup as a data file and its manifest (`<name>.json`: kind, when it was taken, the tables'
counts), the models folder and, for PostgreSQL base backups, the shipped WAL (`wal/`). Kinds:
- `sqlite`: an online snapshot (SQLite's backup API), taken every few minutes by the scheduler;
- `pgdump`: a pg_dump snapshot;
- `pgbase`: a pg_basebackup base backup; with the WAL shipped after it, any moment after it can be restored.
Restore to time T: SQLite and pg_dump restore the newest snapshot taken at or before T; a base backup is
replayed to T exactly. Backups older than the retention are pruned, never the newest good one.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from config.backup import BackupConfig
from core.event import as_utc, utcnow
from ops.backup import postgres
from ops.backup.locations import Location, location
from ops.backup.snapshot import backup as snapshot
from ops.backup.snapshot import export_model_versions
from ops.backup.snapshot import restore as restore_snapshot
from store.hot import HotStore
from store.schema import SCHEMA_VERSION


@dataclass(frozen=True)
class Entry:
    """A backup in a location, as its manifest describes it."""

    name: str
    kind: str
    taken_at: datetime
    point: datetime  # the earliest moment it restores to (a base backup: when it finished)
    manifest: dict[str, Any]


@dataclass
class BackupRun:
    name: str
    kind: str
    written: list[str] = field(default_factory=list)  # where the backup went (each location)
    models: int = 0
    wal_shipped: int = 0
    pruned: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    backup: str
    kind: str
    restored_to: datetime  # the moment the store now reflects (a snapshot's time, or T exactly)
    mismatches: dict[str, list[str]] = field(default_factory=dict)


def catalog(place: Location) -> list[Entry]:
    """Every good backup here (a manifest and its data file), oldest first."""
    entries = []
    for name in place.names():
        if not name.endswith(".json") or not place.exists(name[: -len(".json")]):
            continue
        manifest = json.loads(place.read_text(name))
        taken = as_utc(datetime.fromisoformat(manifest.get("taken_at") or manifest["created_at"]))
        point = as_utc(datetime.fromisoformat(manifest["finished_at"])) if "finished_at" in manifest else taken
        kind = manifest.get("kind") or ("sqlite" if manifest["dialect"] == "sqlite" else "pgdump")
        entries.append(Entry(name[: -len(".json")], kind, taken, point, manifest))
    return sorted(entries, key=lambda entry: entry.taken_at)


def locations_of(config: BackupConfig, to: str | None, output: str) -> list[Location]:
    """The primary location (--to, else backup.yaml's, else OUTPUT/backups) and Region B when configured."""
    primary = location(to or config.location or str(Path(output) / "backups"))
    return [primary] + ([location(config.region_b)] if config.region_b else [])


def method_of(store: HotStore, config: BackupConfig, method: str | None) -> str:
    if store.engine.dialect.name == "sqlite":
        return "sqlite"
    return {"dump": "pgdump", "base": "pgbase"}[method or config.postgres.method]


def run_backup(
    store: HotStore,
    config: BackupConfig,
    places: list[Location],
    method: str | None = None,
    now: datetime | None = None,
) -> BackupRun:
    """Take a backup, put it in every location with the model versions (and the WAL for base backups), prune."""
    kind = method_of(store, config, method)
    with tempfile.TemporaryDirectory(prefix="nightwatch-backup-") as work:
        folder = Path(work)
        if kind == "pgbase":
            taken_at = utcnow()
            data, extra = postgres.base_backup(store.url, folder)
            name = f"nightwatch-{taken_at:%Y%m%dT%H%M%S%f}.pgbase.tar.gz"
            manifest = {
                "kind": kind,
                "dialect": "postgresql",
                "database": postgres.database_of(store.url),
                "taken_at": taken_at.isoformat(),
                "created_at": utcnow().isoformat(),
                "schema_version": SCHEMA_VERSION,
                **extra,
            }
            Path(folder / f"{name}.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            data = data.rename(folder / name)
        else:
            data = snapshot(store, folder)
            name = data.name
        models = export_model_versions(store, folder / "models")
        run = BackupRun(name, kind)
        for place in places:
            run.written.append(place.put(data, name))
            place.put(Path(f"{data}.json"), f"{name}.json")  # the manifest last: a backup counts once complete
            have = set(place.names("models"))
            for model in sorted((folder / "models").iterdir()):
                if model.name not in have:
                    place.put(model, "models", model.name)
        run.models = len(models)
    if kind == "pgbase" and config.postgres.wal_archive:
        postgres.switch_wal(store.url)  # the segment in progress is archived too
        run.wal_shipped = postgres.ship_wal(Path(config.postgres.wal_archive), places)
    for place in places:
        run.pruned += prune(place, config.retention_days, now)
    return run


def ship(config: BackupConfig, places: list[Location]) -> int:
    """Ship the WAL archived since the last run (between base backups; the scheduler runs it often)."""
    if not config.postgres.wal_archive:
        return 0
    return postgres.ship_wal(Path(config.postgres.wal_archive), places)


def prune(place: Location, retention_days: float, now: datetime | None = None) -> list[str]:
    """Delete backups taken longer ago than the retention, never the newest good one; then the WAL that no kept
    base backup needs. Returns what was deleted."""
    cutoff = as_utc(now or utcnow()) - timedelta(days=retention_days)
    entries = catalog(place)
    gone = []
    for entry in entries[:-1]:  # the newest good backup stays, however old
        if entry.taken_at < cutoff:
            place.delete(f"{entry.name}.json")  # the manifest first: a half-deleted backup is not "good"
            place.delete(entry.name)
            gone.append(entry.name)
    bases = [e for e in catalog(place) if e.kind == "pgbase"]
    if bases:
        gone += postgres.prune_wal(place, bases[0].manifest["start_wal"])
    return gone


def restore_to_time(url: str, when: datetime, place: Location, config: BackupConfig) -> RestoreResult:
    """Restore the store at `url` to how it was at `when`: a base backup replayed to that moment (PostgreSQL with
    WAL), else the newest snapshot taken at or before it. ValueError when no backup covers `when`."""
    when = as_utc(when)
    store = HotStore(url)
    dialect = store.engine.dialect.name
    store.close()
    kinds = ("sqlite",) if dialect == "sqlite" else ("pgbase", "pgdump")
    entries = [e for e in catalog(place) if e.kind in kinds]
    for kind in kinds:
        usable = [e for e in entries if e.kind == kind and e.point <= when]
        if not usable:
            continue
        chosen = usable[-1]
        if kind == "pgbase":
            database = chosen.manifest.get("database") or postgres.database_of(url)
            postgres.recover(place, chosen.name, database, when, url, config.postgres)
            return RestoreResult(chosen.name, kind, when)
        with tempfile.TemporaryDirectory(prefix="nightwatch-restore-") as work:
            local = place.get(Path(work) / chosen.name, chosen.name)
            place.get(Path(f"{local}.json"), f"{chosen.name}.json")
            mismatches = restore_snapshot(url, local)
        return RestoreResult(chosen.name, kind, chosen.taken_at, mismatches)
    oldest = min((e.point for e in entries), default=None)
    raise ValueError(
        f"no backup in {place.url} restores to {when.isoformat()}"
        + (f": the oldest covers {oldest.isoformat()} on" if oldest else ": it holds none for this store")
    )
