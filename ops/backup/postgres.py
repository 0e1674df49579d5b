"""PostgreSQL's continuous backup: base backups (pg_basebackup), the WAL archive shipped beside them, and
point-in-time recovery into an instance of our own, dumped into the hot store.

The server archives each finished WAL segment into a folder (`archive_command`, README: Backups); every backup
run ships the segments found there to the backup locations. A restore to time T takes the newest base backup
finished at or before T, replays the shipped WAL up to T in a recovery instance, and copies the recovered
database into the target store (pg_dump | pg_restore), so a restore lands where the other restores land.
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from config.backup import PostgresBackup
from core.event import utcnow
from ops.backup.instance import Instance, bin_dir, free_port
from ops.backup.locations import Location

WAL_FOLDER = "wal"
# A WAL segment (24 hex digits) or a timeline history file; .partial and .backup files are not needed to replay.
_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")


def libpq_url(url: str) -> str:
    """PostgreSQL's programs take libpq URLs: no SQLAlchemy driver suffix."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_of(url: str) -> str:
    return sa.engine.make_url(url).database or "postgres"


def base_backup(url: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """A base backup of the whole server as one compressed tar (its WAL included, so it is consistent by itself);
    returns the file and what the manifest records: when it finished and where its WAL starts."""
    work = folder / "base"
    subprocess.run(
        [
            "pg_basebackup",
            f"--dbname={libpq_url(url)}",
            f"--pgdata={work}",
            "--format=tar",
            "--gzip",
            "--wal-method=fetch",
            "--checkpoint=fast",
            "--label=nightwatch",
        ],
        check=True,
        capture_output=True,
    )
    finished = utcnow()  # recovery to any time after this is consistent
    with tarfile.open(work / "base.tar.gz") as tar:
        label = tar.extractfile("backup_label").read().decode()  # type: ignore[union-attr]
    start_wal = re.search(r"START WAL LOCATION: .* \(file ([0-9A-F]{24})\)", label).group(1)  # type: ignore[union-attr]
    return work / "base.tar.gz", {"finished_at": finished.isoformat(), "start_wal": start_wal}


def switch_wal(url: str) -> None:
    """Close the current WAL segment so the server archives what was written up to now."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_switch_wal()"))
    engine.dispose()


def ship_wal(archive: Path, locations: list[Location]) -> int:
    """Copy the archived WAL segments not yet in each location; returns how many copies were made."""
    if not archive.is_dir():
        raise FileNotFoundError(f"no WAL archive folder {archive} (postgres.wal_archive in backup.yaml)")
    copied = 0
    names = sorted(p.name for p in archive.iterdir() if _SEGMENT.match(p.name) or _HISTORY.match(p.name))
    for place in locations:
        have = set(place.names(WAL_FOLDER))
        for name in names:
            if name not in have:
                place.put(archive / name, WAL_FOLDER, name)
                copied += 1
    return copied


def prune_wal(place: Location, oldest_kept_start: str) -> list[str]:
    """Delete WAL segments older than the oldest kept base backup needs (timeline histories stay)."""
    gone = []
    for name in place.names(WAL_FOLDER):
        if _SEGMENT.match(name) and name[8:] < oldest_kept_start[8:]:
            place.delete(WAL_FOLDER, name)
            gone.append(name)
    return gone


def recover(
    place: Location, backup_name: str, database: str, target: datetime, into_url: str, settings: PostgresBackup
) -> None:
    """Replay the base backup `backup_name` and the shipped WAL up to `target` in a recovery instance, then copy
    the recovered `database` into the store at `into_url` (its tables replaced)."""
    with tempfile.TemporaryDirectory(prefix="nightwatch-pitr-") as work:
        work_dir = Path(work)
        wal = work_dir / "wal"
        wal.mkdir()
        for name in place.names(WAL_FOLDER):
            place.get(wal / name, WAL_FOLDER, name)
        instance = Instance(work_dir / "data", settings.recovery_port or free_port(), bin_dir(settings.bin_dir))
        instance.datadir.mkdir(mode=0o700)
        with tarfile.open(place.get(work_dir / "base.tar.gz", backup_name)) as tar:
            tar.extractall(instance.datadir, filter="tar")
        if not (instance.datadir / "postgresql.conf").exists():  # Debian keeps it in /etc, outside the backup
            (instance.datadir / "postgresql.conf").write_text("")
        (instance.datadir / "recovery.signal").write_text("")
        # The server's own archiving and replication settings are not wanted on a throwaway instance.
        instance.configure(
            restore_command=f'cp "{wal}/%f" "%p"',
            recovery_target_time=target.isoformat(),
            recovery_target_action="promote",
            archive_mode="off",
            hba_file=str(_trust_hba(instance.datadir)),
            ident_file=str(instance.datadir / "pg_ident.conf"),
        )
        (instance.datadir / "pg_ident.conf").touch()
        instance.own(work_dir)
        try:
            instance.start()
            instance.wait_promoted()
            dump = work_dir / "recovered.pgdump"
            subprocess.run(
                ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", libpq_url(instance.url(database))],
                check=True,
                capture_output=True,
            )
        finally:
            instance.stop()
        restore_dump(dump, into_url)


def _trust_hba(datadir: Path) -> Path:
    """The recovery instance listens on 127.0.0.1 only, for this process: trust local connections."""
    path = datadir / "pg_hba.conf"
    path.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    return path


def restore_dump(path: Path, url: str) -> None:
    subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={libpq_url(url)}", str(path)],
        check=True,
        capture_output=True,
    )
