"""Continuous backup: point-in-time restore on a real PostgreSQL with WAL archiving, SQLite snapshots restored
to a time, pruning past the retention, Region B, and locations a filesystem here cannot write."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from access import accounts, audit
from cli.main import main
from config.backup import BackupConfig, PostgresBackup
from core.event import utcnow
from ops.backup import catalog, location, prune, restore_to_time, run_backup
from ops.backup.instance import Instance, bin_dir
from store.hot import HotStore
from store.schema import published

SOURCE_PORT, RECOVERY_PORT = 19650, 19651  # this suite's ports


def counts(url: str) -> dict[str, int]:
    store = HotStore(url)
    with store.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(published.c.source, published.c.count)).all())
    store.close()
    return rows


def wait_archived(url: str, timeout_s: float = 30) -> None:
    """Until the server has archived the segment it just closed."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(sa.text("select last_archived_wal, last_failed_wal from pg_stat_archiver")).one()
            current = conn.execute(sa.text("select pg_walfile_name(pg_current_wal_lsn())")).scalar()
        if row.last_archived_wal and row.last_archived_wal[8:] >= f"{int(current[8:], 16) - 1:016X}":
            return
        time.sleep(0.2)
    raise AssertionError(f"WAL not archived: {row}")


@pytest.fixture
def archiving_postgres():
    """A PostgreSQL instance of our own with archive_mode on (the shared server's cannot be changed), in a folder
    the postgres login can reach (pytest's tmp_path is the root's only)."""
    root = Path(tempfile.mkdtemp(prefix="nightwatch-pg-"))
    archive = root / "wal-archive"
    archive.mkdir()
    server = Instance(root / "source", SOURCE_PORT, bin_dir())
    server.own(root)
    server.init(archive_mode="on", archive_command=f'cp "%p" "{archive}/%f"', wal_level="replica")
    server.start()
    engine = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("create database nightwatch"))
    engine.dispose()
    yield server.url("nightwatch"), archive
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_postgres_point_in_time_restore(archiving_postgres, postgres_url, tmp_path):
    url, archive = archiving_postgres
    store = HotStore(url)
    store.ensure_schema()
    config = BackupConfig(
        postgres=PostgresBackup(method="base", wal_archive=str(archive), recovery_port=RECOVERY_PORT),
        region_b=str(tmp_path / "region-b"),
    )
    places = [location(tmp_path / "backups"), location(tmp_path / "region-b")]
    run = run_backup(store, config, places)
    assert run.kind == "pgbase" and len(run.written) == 2

    store.add_published("ztf", 5)  # written after the base backup: only the WAL holds it
    time.sleep(1.0)
    noted = utcnow()
    time.sleep(1.0)
    store.add_published("ztf", 3)
    store.add_published("rubin", 7)
    store.close()
    assert counts(url) == {"ztf": 8, "rubin": 7}

    # The scheduler's WAL shipping: close the segment, wait for the server's archive_command, ship it.
    sa.create_engine(url, isolation_level="AUTOCOMMIT").connect().execute(sa.text("select pg_switch_wal()"))
    wait_archived(url)
    assert main(["backup", "--ship-wal", "--db-url", url, "--config", str(_config_dir(tmp_path, config))]) == 0

    # Into another server's database (the machine's shared PostgreSQL), as it was at the noted time.
    HotStore(postgres_url).ensure_schema()
    result = restore_to_time(postgres_url, noted, location(tmp_path / "region-b"), config)
    assert result.kind == "pgbase" and result.restored_to == noted
    assert counts(postgres_url) == {"ztf": 5}

    # Before the base backup finished there is nothing to restore to: a clear refusal.
    with pytest.raises(ValueError, match="no backup .* restores to"):
        restore_to_time(postgres_url, noted - timedelta(days=1), places[0], config)


def _config_dir(tmp_path: Path, config: BackupConfig) -> Path:
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    (folder / "backup.yaml").write_text(json.dumps(config.model_dump()))
    return folder


def test_sqlite_restore_to_time_takes_the_newest_snapshot_before_it(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/store.db"
    store = HotStore(url)
    store.ensure_schema()
    accounts.bootstrap(store, "root", "a-long-password-1")
    backups = str(tmp_path / "backups")
    store.add_published("gcn", 1)
    assert main(["backup", "--db-url", url, "--to", backups]) == 0
    time.sleep(0.05)
    between = utcnow()
    time.sleep(0.05)
    store.add_published("gcn", 1)
    assert main(["backup", "--db-url", url, "--to", backups]) == 0
    store.add_published("gcn", 1)
    assert counts(url) == {"gcn": 3}
    capsys.readouterr()

    # Restoring replaces the store: an Admin's action, checked and audited.
    assert main(["restore", "--to-time", between.isoformat(), "--db-url", url, "--output", str(tmp_path)]) == 2
    assert "needs --as" in capsys.readouterr().err
    args = ["restore", "--to-time", between.isoformat(), "--db-url", url, "--from", backups, "--as", "root"]
    assert main(args) == 0
    assert "every table matches" in capsys.readouterr().out
    assert counts(url) == {"gcn": 1}
    entry = audit.audit_entries(HotStore(url), action="backup.restore")[0]
    assert entry.actor == "root" and entry.after["to_time"] == between.isoformat()

    assert main(["backup", "--list", "--to", backups]) == 0
    assert capsys.readouterr().out.count(" sqlite ") == 2


def test_backups_past_the_retention_are_pruned_never_the_newest(tmp_path, store):
    place = location(tmp_path / "backups")
    config = BackupConfig()
    for _ in range(2):
        run_backup(store, config, [place])
    assert len(catalog(place)) == 2
    assert prune(place, 30, utcnow() + timedelta(days=29)) == []
    newest = catalog(place)[-1].name
    gone = prune(place, 30, utcnow() + timedelta(days=400))
    assert len(gone) == 1 and [e.name for e in catalog(place)] == [newest]
    assert not place.exists(gone[0]) and not place.exists(f"{gone[0]}.json")


def test_region_b_and_urls(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/store.db"
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "backup.yaml").write_text(f"location: file://{tmp_path}/primary\nregion_b: {tmp_path}/region-b\n")
    assert main(["backup", "--db-url", url, "--config", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"file://{tmp_path}/primary/nightwatch-" in out and "(Region B)" in out
    primary, region_b = catalog(location(f"{tmp_path}/primary")), catalog(location(tmp_path / "region-b"))
    assert [e.name for e in primary] == [e.name for e in region_b] and len(primary) == 1


@pytest.mark.parametrize("target", ["ftp://host/backups", "foo://bucket/x", "http://example.org/b"])
def test_a_scheme_nothing_here_can_write_is_refused(tmp_path, capsys, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path}/store.db"
    assert main(["backup", "--db-url", url, "--to", target]) == 2
    err = capsys.readouterr().err
    assert f"cannot write backups to {target}" in err and "gs://" in err
    assert not any(path.name.endswith(":") for path in tmp_path.iterdir())  # no local folder named `ftp:`
