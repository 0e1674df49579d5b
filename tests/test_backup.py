"""Backups and restores of the hot store, SQLite and PostgreSQL, verified table by table."""

from __future__ import annotations

import json
from pathlib import Path

from access import accounts, audit
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


def as_admin(monkeypatch, url: str) -> None:
    """Restoring replaces the store: a Super Admin (the bootstrap's) acts, its password given as a script would."""
    accounts.bootstrap(HotStore(url), "root", "a-long-password-1")
    monkeypatch.setenv("NIGHTWATCH_PASSWORD", "a-long-password-1")


def round_trip(url: str, tmp_path, capsys, monkeypatch) -> None:
    act_as_service(monkeypatch, url)
    run([f"--input={DATA}/gcn/voevent/*.xml", f"--output={tmp_path / 'out'}", f"--db_url={url}"])
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "backups")]) == 0
    before = kept(url)  # as backed up (the backup's sign-in with the key noted its use: in the copy too)
    path = capsys.readouterr().out.split("backup written to ")[1].split(" ")[0]
    damage(url)
    assert kept(url) != before
    monkeypatch.delenv("NIGHTWATCH_API_KEY")
    assert main(["restore", path, "--db-url", url]) == 2  # anonymous: refused
    assert "give an identity" in capsys.readouterr().err
    as_admin(monkeypatch, url)
    assert main(["restore", path, "--db-url", url, "--as", "root"]) == 0
    assert "every table matches" in capsys.readouterr().out
    after = fingerprints(HotStore(url))
    # The restore itself is audited after it (one row more in the audit log); every other table is as backed up.
    assert {k: v for k, v in after.items() if not k.startswith("audit")} == before
    # (the backup's own audit row came after its copy, so the restored log ends with the restore)
    entry = audit.audit_entries(HotStore(url))[0]
    assert (entry.action, entry.actor) == ("backup.restore", "root")


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
    as_admin(monkeypatch, url)
    assert main(["restore", path, "--db-url", url, "--as", "root"]) == 1
    assert "MISMATCH alerts" in capsys.readouterr().out
