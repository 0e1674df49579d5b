"""Backups and restores of the hot store, SQLite and PostgreSQL, verified table by table."""

from __future__ import annotations

import json
from pathlib import Path

from access import audit
from cli.main import main
from ops.backup import fingerprints
from pipeline.batch import run
from store.hot import HotStore
from store.schema import events
from tests.conftest import DATA


def damage(url: str) -> None:
    with HotStore(url).engine.begin() as conn:
        conn.execute(events.delete().where(events.c.source == "gcn"))


def round_trip(url: str, tmp_path, capsys) -> None:
    run([f"--input={DATA}/gcn/voevent/*.xml", f"--output={tmp_path / 'out'}", f"--db_url={url}"])
    before = fingerprints(HotStore(url))
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "backups")]) == 0
    path = capsys.readouterr().out.split("backup written to ")[1].split(" ")[0]
    damage(url)
    assert fingerprints(HotStore(url)) != before
    assert main(["restore", path, "--db-url", url]) == 0
    assert "every table matches" in capsys.readouterr().out
    after = fingerprints(HotStore(url))
    # The restore itself is audited after it (one row more in the audit log); every other table is as backed up.
    assert {k: v for k, v in after.items() if not k.startswith("audit")} == {
        k: v for k, v in before.items() if not k.startswith("audit")
    }
    # (the backup's own audit row came after its copy, so the restored log ends with the restore)
    assert audit.audit_entries(HotStore(url))[0].action == "backup.restore"


def test_sqlite_backup_and_restore(tmp_path, capsys):
    round_trip(f"sqlite:///{tmp_path}/store.db", tmp_path, capsys)


def test_every_model_version_is_kept(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/store.db"
    for value in ("0.6", "0.7"):
        assert main(["thresholds", "set-cut", "ztf", "real_bogus", value, "--db-url", url]) == 0
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "b")]) == 0
    assert main(["thresholds", "set-rule", "grb_localised", "pos_error_deg", "<=", "3", "--db-url", url]) == 0
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "b")]) == 0
    kept = sorted(path.name for path in (tmp_path / "b" / "models").iterdir())
    assert kept == ["v1-filters.json", "v2-filters.json", "v3-classification.json"]
    assert json.loads((tmp_path / "b" / "models" / "v2-filters.json").read_text())["document"]["ztf"][0]["value"] == 0.7
    capsys.readouterr()


def test_postgres_backup_and_restore(postgres_url, tmp_path, capsys):
    round_trip(postgres_url, tmp_path, capsys)


def test_a_restore_that_does_not_match_its_manifest_fails(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/store.db"
    run([f"--input={DATA}/gcn/voevent/*.xml", f"--output={tmp_path / 'out'}", f"--db_url={url}"])
    assert main(["backup", "--db-url", url, "--to", str(tmp_path / "b")]) == 0
    path = capsys.readouterr().out.split("backup written to ")[1].split(" ")[0]
    manifest = json.loads(Path(f"{path}.json").read_text())  # the backup no longer holds what it recorded
    manifest["tables"]["alerts"]["rows"] += 1
    Path(f"{path}.json").write_text(json.dumps(manifest))
    assert main(["restore", path, "--db-url", url]) == 1
    assert "MISMATCH alerts" in capsys.readouterr().out
