"""Snapshots of the hot store, and restores verified against them.

SQLite: a consistent online copy through SQLite's backup API (safe while the pipeline writes). PostgreSQL:
`pg_dump --format=custom` and `pg_restore`. Each backup has a manifest beside it with every table's row count
and a checksum of its rows; a restore is checked against it, table by table.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from config.limits import file_mode, load_limits
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import SCHEMA_VERSION, metadata


def fingerprints(store: HotStore) -> dict[str, dict[str, Any]]:
    """Row count and a checksum of the rows (in key order) of every table."""
    result = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            digest, count = hashlib.sha256(), 0
            for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(_canonical(value) for value in row)).encode())
                count += 1
            result[table.name] = {"rows": count, "sha256": digest.hexdigest()}
    return result


def _canonical(value: Any) -> Any:
    """The same value from SQLite or PostgreSQL: times as UTC ISO text, bytes as bytes."""
    if hasattr(value, "isoformat"):
        if isinstance(value, datetime):
            value = as_utc(value)
        return value.isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _libpq_url(url: str) -> str:
    """pg_dump takes libpq URLs: no SQLAlchemy driver suffix."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    return Path(sa.engine.make_url(url).database)


def backup(store: HotStore, folder: Path) -> Path:
    """Write a backup of the store into `folder`; returns its path (the manifest is `<path>.json`).

    The backup and its manifest are created with the configured file mode (owner-only by default: a backup
    holds the password and key hashes and the audit log), whatever the process umask.
    """
    files = load_limits().files
    with file_mode(files):
        target = _backup(store, folder)
    for path in (target, Path(f"{target}.json")):
        os.chmod(path, int(files.mode, 8))  # pg_dump may set its own mode
    return target


def _backup(store: HotStore, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    taken_at = utcnow()  # the copy holds every change committed before this (restore-to-time picks by it)
    stamp = f"{taken_at:%Y%m%dT%H%M%S%f}"
    dialect = store.engine.dialect.name
    if dialect == "sqlite":
        target = folder / f"nightwatch-{stamp}.sqlite"
        with sqlite3.connect(_sqlite_path(store.url)) as source, sqlite3.connect(target) as copy:
            source.backup(copy)  # a consistent snapshot, even while writers are busy
        copy.close()
    elif dialect == "postgresql":
        target = folder / f"nightwatch-{stamp}.pgdump"
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _libpq_url(store.url)],
            check=True,
            capture_output=True,
        )
    else:
        raise ValueError(f"no backup method for a {dialect} hot store")
    manifest = {
        "created_at": utcnow().isoformat(),
        "taken_at": taken_at.isoformat(),
        "kind": "sqlite" if dialect == "sqlite" else "pgdump",
        "dialect": dialect,
        "schema_version": SCHEMA_VERSION,
        "tables": fingerprints(store),
    }
    Path(f"{target}.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return target


def export_model_versions(store: HotStore, folder: Path) -> list[Path]:
    """Every version of the classification rules and filter cuts (the models) as a file of its own, never
    overwritten: `models/v<N>-<kind>.json`. Returns the files written this time."""
    from store.schema import thresholds

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with store.engine.connect() as conn:
        for row in conn.execute(sa.select(thresholds).order_by(thresholds.c.version)):
            path = folder / f"v{row.version}-{row.kind}.json"
            if path.exists():
                continue
            record = {
                "version": row.version,
                "kind": row.kind,
                "author": row.author,
                "note": row.note,
                "created_at": _canonical(row.created_at),
                "document": json.loads(row.document),
            }
            path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written


def restore(url: str, path: Path) -> dict[str, list[str]]:
    """Restore the backup at `path` into the store at `url`; returns the tables that do not match the manifest
    (empty when the restore is verified)."""
    manifest_path = Path(f"{path}.json")
    if not path.is_file() or not manifest_path.is_file():
        raise FileNotFoundError(f"no backup at {path} (with its manifest {manifest_path})")
    manifest = json.loads(manifest_path.read_text())
    store = HotStore(url)
    dialect = store.engine.dialect.name
    if dialect != manifest["dialect"]:
        raise ValueError(f"backup is of a {manifest['dialect']} store; {url} is {dialect}")
    if dialect == "sqlite":
        store.close()
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        with file_mode(load_limits().files):  # the restored store is owner-only, like the one it replaces
            shutil.copyfile(path, target)
        store = HotStore(url)
    else:
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={_libpq_url(url)}", str(path)],
            check=True,
            capture_output=True,
        )
    restored = fingerprints(store)
    store.close()
    return {
        name: [f"expected {want}", f"found {restored.get(name)}"]
        for name, want in manifest["tables"].items()
        if restored.get(name) != want
    }
