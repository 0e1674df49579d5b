"""Backups of the hot store (backup.yaml): where they go, how often, how long they are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from config.base import Strict, config_folder, read_file
from config.environment import environment


class SqliteBackup(Strict):
    every_min: float = Field(15, gt=0)


class PostgresBackup(Strict):
    method: Literal["dump", "base"] = "dump"
    every_h: float = Field(24, gt=0)
    wal_archive: str | None = None
    bin_dir: str | None = None
    recovery_port: int = Field(0, ge=0, le=65535)


class BackupConfig(Strict):
    version: str = "1"
    location: str | None = None
    region_b: str | None = None
    retention_days: float = Field(30, gt=0)
    sqlite: SqliteBackup = SqliteBackup()
    postgres: PostgresBackup = PostgresBackup()


def load_backup(config_dir: str | Path | None = None) -> BackupConfig:
    """backup.yaml from the configuration folder (the shipped one by default)."""
    folder = config_folder(config_dir, environment().config_dir)
    config, _ = read_file(folder, "backup.yaml", BackupConfig, empty={})
    return config
