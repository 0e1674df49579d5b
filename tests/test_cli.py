"""The `nightwatch` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli.main import main
from tests.conftest import DATA, REPO


def test_run_on_the_simulator_prints_the_summary_and_writes_json(tmp_path, capsys):
    summary_path = tmp_path / "summary.json"
    code = main(["run", "--simulate", "120", "--output", str(tmp_path / "out"), "--summary-json", str(summary_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == 120 == summary["packets"]
    assert summary["accounting"]["balanced"] is True
    assert summary["accounting"]["classified"] + summary["accounting"]["dead_lettered"] == 120
    assert set(summary["by_class"]) == {"critical", "significant", "interesting", "routine", "rejected"}
    for needle in ("events received", "alerts CRITICAL / HIGH", "review queue", "dead letters", "accounting", "OK"):
        assert needle in printed
    assert str(tmp_path / "out") in printed  # where the outputs went
    assert (tmp_path / "out" / "nightwatch.db").is_file()


def test_run_over_files_and_a_second_time(tmp_path, capsys):
    args = ["run", "--input", f"{DATA}/gcn/voevent/*.xml", "--output", str(tmp_path)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "14  (gcn 14)" in first
    assert "hot store new / already stored       14 / 0" in first
    assert "hot store new / already stored       0 / 14" in second


def test_clear_errors_exit_2(tmp_path, capsys):
    assert main(["run", "--input", str(tmp_path / "nothing-*.avro"), "--output", str(tmp_path)]) == 2
    assert "no packet files match" in capsys.readouterr().err
    bad_config = tmp_path / "config"
    bad_config.mkdir()
    (bad_config / "filters.yaml").write_text(
        "version: 1\nztf:\n  - {name: x, field: rb, op: '~', value: 1, reason: r}\n"
    )
    assert main(["run", "--simulate", "5", "--output", str(tmp_path), "--config", str(bad_config)]) == 2
    err = capsys.readouterr().err
    assert "filters.yaml: invalid configuration: ztf.0.op" in err
    assert main(["run", "--simulate", "5", "--output", str(tmp_path), "--mix", "ztf=1,hubble=2"]) == 2
    assert "hubble" in capsys.readouterr().err


def test_simulate_writes_packet_files(tmp_path, capsys):
    assert main(["simulate", "--count", "30", "--files", str(tmp_path), "--rubin-wire", "both"]) == 0
    files = list(tmp_path.iterdir())
    assert len(files) == 30
    assert {path.suffix for path in files} <= {".avro", ".confluent", ".json", ".xml"}


def test_console_script_help():
    nightwatch = REPO / ".venv" / "bin" / "nightwatch"
    command = [str(nightwatch)] if nightwatch.exists() else [sys.executable, "-m", "cli.main"]
    result = subprocess.run([*command, "run", "--help"], capture_output=True, text=True, check=True)
    for option in ("--input", "--simulate", "--output", "--db-url", "--config", "--summary-json"):
        assert option in result.stdout
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
