"""Backups and restores of the hot store, SQLite and PostgreSQL, verified table by table."""

from __future__ import annotations

import json
from pathlib import Path

from access.audit import audit_entries
from cli.main import main
from ops.backup import fingerprints
from pipeline.batch import run
from store.hot import HotStore
from store.schema import events
from tests.conftest import DATA, act_as_service


def damage(url: str) -> None:
    with HotStore(url).engine.begin() as conn:
        conn.execute(events.delete().where(events.c.source == "gcn"))


def kept(url: str) -> dict:
    """What a backup holds, but the audit log: restoring is itself audited, after the restore."""
    return {name: value for name, value in fingerprints(HotStore(url)).items() if not name.startswith("audit")}


def round_trip(url: str, tmp_path, capsys, monkeypatch) -> None:
    act_as_service(monkeypatch, url)
    run([f"--input={DATA}/gcn/voevent/*.xml", f"--output={tmp_path / 'out'}", f"--db_url={url}"])
    before = kept(url)
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "backups")]) == 0
    path = capsys.readouterr().out.split("backup written to ")[1].split(" ")[0]
    damage(url)
    assert kept(url) != before
    monkeypatch.delenv("NIGHTWATCH_API_KEY")
    assert main(["restore", path, "--db-url", url]) == 2  # anonymous: refused
    assert "give an identity" in capsys.readouterr().err
    act_as_service(monkeypatch, url)
    assert main(["restore", path, "--db-url", url]) == 0
    assert "every table matches" in capsys.readouterr().out
    assert kept(url) == before
    assert audit_entries(HotStore(url), action="data.restore")[0].actor == "test-service"


def test_sqlite_backup_and_restore(tmp_path, capsys, monkeypatch):
    round_trip(f"sqlite:///{tmp_path}/store.db", tmp_path, capsys, monkeypatch)


def test_every_model_version_is_kept(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path}/store.db"
    act_as_service(monkeypatch, url)
    for value in ("0.6", "0.7"):
        assert main(["thresholds", "set-cut", "ztf", "real_bogus", value, "--db-url", url]) == 0
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "b")]) == 0
    assert main(["thresholds", "set-rule", "grb_localised", "pos_error_deg", "<=", "3", "--db-url", url]) == 0
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "b")]) == 0
    kept = sorted(path.name for path in (tmp_path / "b" / "models").iterdir())
    assert kept == ["v1-filters.json", "v2-filters.json", "v3-classification.json"]
    assert json.loads((tmp_path / "b" / "models" / "v2-filters.json").read_text())["document"]["ztf"][0]["value"] == 0.7
    capsys.readouterr()


def test_postgres_backup_and_restore(postgres_url, tmp_path, capsys, monkeypatch):
    round_trip(postgres_url, tmp_path, capsys, monkeypatch)


def test_a_restore_that_does_not_match_its_manifest_fails(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path}/store.db"
    act_as_service(monkeypatch, url)
    run([f"--input={DATA}/gcn/voevent/*.xml", f"--output={tmp_path / 'out'}", f"--db_url={url}"])
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "b")]) == 0
    path = capsys.readouterr().out.split("backup written to ")[1].split(" ")[0]
    manifest = json.loads(Path(f"{path}.json").read_text())  # the backup no longer holds what it recorded
    manifest["tables"]["alerts"]["rows"] += 1
    Path(f"{path}.json").write_text(json.dumps(manifest))
    assert main(["restore", path, "--db-url", url]) == 1
    assert "MISMATCH alerts" in capsys.readouterr().out
