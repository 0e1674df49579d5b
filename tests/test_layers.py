"""The house's shape, checked: the layer contract (import-linter), no import cycles, a Beam-free console and API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "core", "store", "access", "ops", "agents", "transforms", "pipeline", "dashboard", "api", "cli")
PACKAGES += ("devtools",)


def test_the_layer_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _loaded_after(statements: str, packages: tuple[str, ...] = ("apache_beam", "transforms")) -> list[str]:
    """The modules of `packages` a fresh interpreter holds after running `statements`."""
    probe = f"import json, sys\n{statements}\n"
    probe += f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))\n"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_console_and_api_load_no_beam():
    assert _loaded_after("import api.app, dashboard.app, dashboard.views.monitoring, dashboard.views.alerts") == []


def test_the_job_loads_beam_so_the_probe_above_can_fail():
    assert "apache_beam" in _loaded_after("import pipeline.graph")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_cycles_not_even_inside_functions():
    graph = grimp.build_graph(*PACKAGES)  # grimp sees function-level imports too
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    for name, body in {"loop_a": "from loop_b import x\n", "loop_b": "def x():\n    from loop_a import y\n"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("loop_a", "loop_b")) == [["loop_a", "loop_b"]]


def test_commands_that_run_no_job_load_no_beam():
    assert _loaded_after("from cli.main import build_parser\nbuild_parser().parse_args(['users', 'list'])") == []


def test_no_module_over_500_lines_without_a_reason_at_its_top():
    long_ones = []
    for path in sorted(REPO.glob("*/**/*.py")):
        if ".venv" in path.parts or path.relative_to(REPO).parts[0] not in PACKAGES + ("tests",):
            continue
        lines = path.read_text().splitlines()
        if len(lines) > 500 and not any("Why this module is long:" in line for line in lines[:30]):
            long_ones.append(f"{path.relative_to(REPO)} ({len(lines)} lines)")
    assert long_ones == []
