"""Issue 15 item 8: what the commands write is owner-only by default (config/limits.yaml `files.mode`), whatever the
umask the process started with: the hot store (password and key hashes, the audit log), backups, dead letters,
tiers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.batch import run
from tests.conftest import DATA


@pytest.fixture
def loose_umask():
    previous = os.umask(0o022)  # what a login shell usually has: 0644 files, 0755 folders
    yield
    os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root) / name
            found[str(path.relative_to(folder))] = stat.S_IMODE(path.stat().st_mode)
    return found


def mixed_input(folder: Path) -> str:
    folder.mkdir()
    # Real packets, some of them kept in the archive (rejected events never are, as the guide's table says).
    for path in [*sorted((DATA / "ztf").glob("*.avro"))[:5], *sorted((DATA / "gcn" / "json").glob("*.json"))]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "bad.json").write_bytes(b'{"trigger_time": "2025-01-01T00:00:00Z", "ra": -99, "dec": 0}')
    return f"{folder}/*"


def test_a_real_run_writes_owner_only_files_and_folders(tmp_path, loose_umask):
    out = tmp_path / "out"
    summary = run([f"--input={mixed_input(tmp_path / 'in')}", f"--output={out}", "--run_id=modes"])
    assert summary.ok, summary.table()
    found = modes(out)
    assert "nightwatch.db" in found and any(name.startswith("warm/") for name in found)
    assert any(name.startswith("archive/") for name in found)
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not loose, loose
    assert found["nightwatch.db"] == 0o600 and found["warm"] == 0o700
    assert os.umask(0o022) == 0o022  # the run restored the process umask
    # A store made earlier with a looser mode is tightened by the next run.
    os.chmod(out / "nightwatch.db", 0o644)
    run([f"--input={tmp_path / 'in'}/*", f"--output={out}", "--run_id=modes-2"])
    assert stat.S_IMODE((out / "nightwatch.db").stat().st_mode) == 0o600


def test_dead_letter_files_and_backups_are_owner_only(tmp_path, loose_umask, beam_pipeline, config):
    import apache_beam as beam

    from config.limits import file_mode
    from core.event import Packet
    from ops.backup import backup
    from pipeline.graph import build_pipeline
    from store.hot import HotStore
    from store.layout import Outputs

    # The hot store unreachable: dead letters go to JSON-lines files (under the mode the commands set).
    outputs = Outputs(
        db_url="sqlite:////nonexistent-folder/nightwatch.db",
        warm_root=str(tmp_path / "warm"),
        archive_root=str(tmp_path / "archive"),
        dead_letter_root=str(tmp_path / "dead_letters"),
    )
    with file_mode(config.limits.files), beam_pipeline as p:
        build_pipeline(p | beam.Create([Packet(payload=b"{not json", origin="bad")]), config, outputs, "fallback")
    written = [path for path in (tmp_path / "dead_letters").rglob("*") if path.is_file()]
    assert written and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in written)
    # Backups: the store's copy and its manifest, whatever the umask.
    store = HotStore(f"sqlite:///{tmp_path / 'hot.db'}")
    store.ensure_schema()
    target = backup(store, tmp_path / "backups")
    store.close()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{target}.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700
    from ops.backup import restore

    restore(f"sqlite:///{tmp_path / 'restored' / 'hot.db'}", target)
    assert stat.S_IMODE((tmp_path / "restored" / "hot.db").stat().st_mode) == 0o600


def test_the_mode_is_configurable(tmp_path, loose_umask):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "limits.yaml").write_text("version: '1'\nfiles: {mode: '0640'}\n")
    out = tmp_path / "out"
    run([f"--input={mixed_input(tmp_path / 'in')}", f"--output={out}", f"--config_dir={config_dir}", "--run_id=m"])
    found = modes(out)
    assert found["nightwatch.db"] == 0o640 and found["warm"] == 0o750
    assert all(mode & 0o007 == 0 for mode in found.values())
