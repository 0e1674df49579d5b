"""The house's shape, checked: the layer contract (import-linter), no import cycles, a Beam-free console and API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_layer_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_console_and_api_load_no_beam():
    probe = (
        "import json, sys\n"
        "import api.app, dashboard.app, dashboard.views.monitoring, dashboard.views.alerts\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'transforms'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_the_job_loads_beam_so_the_probe_above_can_fail():
    probe = "import sys, pipeline.graph; print('apache_beam' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
