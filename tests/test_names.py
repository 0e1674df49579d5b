"""Counter names are spelled once (core/names.py): every step counts with a name built there, and the
accounting, the drain and the summary read only names some step emits."""

from __future__ import annotations

import ast
from pathlib import Path

from core import names

ROOT = Path(__file__).resolve().parents[1]
PRODUCERS = sorted((ROOT / "transforms").glob("*.py")) + sorted((ROOT / "pipeline").rglob("*.py"))
PRODUCERS += sorted((ROOT / "cli").glob("*.py"))
# The readers of the counts: the batch summary and its accounting, the streaming drain and flow control,
# the agents' tallies.
READERS = {
    "pipeline/batch.py": None,  # the whole module
    "pipeline/streaming.py": {"_in_flight", "run_stream", "_wait_until_drained", "_InFlightLimit"},
    "agents/summary.py": {"tallies"},
}
# Attributes of core.names that are not counter names (stages, tables, tiers, helpers).
NOT_COUNTERS = {
    "METRICS_NAMESPACE",
    "parts",
    "total",
    "sink_stage",
    "LOSING_STAGES",
    "TIERS",
    "EVENTS",
    "ALERTS",
    "REVIEW",
    "WARM",
    "ARCHIVE",
    "DECODE",
    "FILTER",
    "CLASSIFY",
    "ROUTE",
    "DISPATCH",
}


def names_used(node: ast.AST) -> set[str]:
    """Every `names.X` under a node."""
    return {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "names"
    }


def counter_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "counter"
    ]


def produced() -> tuple[set[str], list[str]]:
    """The core.names counters the steps emit, and any counter call not naming its counter through core.names."""
    found, literal = set(), []
    for path in PRODUCERS:
        for call in counter_calls(ast.parse(path.read_text())):
            arg = call.args[0]
            target = arg.func if isinstance(arg, ast.Call) else arg
            if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
                literal.append(f"{path.relative_to(ROOT)}:{call.lineno}")
                continue
            if target.value.id != "names":
                literal.append(f"{path.relative_to(ROOT)}:{call.lineno}")
                continue
            found.add(target.attr)
    return found, literal


def read() -> dict[str, set[str]]:
    """core.names attributes each reader uses."""
    used: dict[str, set[str]] = {}
    for relative, scopes in READERS.items():
        tree = ast.parse((ROOT / relative).read_text())
        if scopes is None:
            used[relative] = names_used(tree)
            continue
        nodes = [
            node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in scopes
        ]
        assert {node.name for node in nodes} == scopes, f"{relative}: reader moved or renamed"
        used[relative] = set().union(*(names_used(node) for node in nodes))
    return used


def test_every_counter_is_named_in_core_names():
    found, literal = produced()
    assert not literal, f"counters named outside core/names.py: {literal}"
    assert {"RECEIVED", "stored", "dead_letters", "routed", "INGESTED"} <= found


def test_accounting_reads_only_names_a_step_emits():
    found, _ = produced()
    for reader, used in read().items():
        counters = used - NOT_COUNTERS
        assert counters, f"{reader} reads no counter through core.names"
        assert counters <= found, f"{reader} reads counters no step emits: {sorted(counters - found)}"


def test_losing_stages_are_stages_a_step_dead_letters_from():
    stages = set()
    for path in sorted((ROOT / "transforms").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            # `stage = names.X` on a step class, `stage=names.X` on a DeadLetter
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "stage" for t in node.targets):
                stages |= {getattr(names, attr) for attr in names_used(node.value)}
            if isinstance(node, ast.keyword) and node.arg == "stage":
                stages |= {getattr(names, attr) for attr in names_used(node.value)}
    stages |= {names.sink_stage(what) for what in (names.EVENTS, names.ALERTS, names.REVIEW, *names.TIERS)}
    assert set(names.LOSING_STAGES) <= stages


def test_families_read_back():
    counts = {
        names.stored("critical"): 2,
        names.stored("routine"): 3,
        names.RECEIVED: 5,
        names.received("ztf"): 5,
        names.dead_letters(names.DECODE): 1,
        names.DEAD_LETTERS: 1,
    }
    assert names.parts(counts, names.stored) == {"critical": 2, "routine": 3}
    assert names.total(counts, names.stored) == 5
    assert names.parts(counts, names.received) == {"ztf": 5}
    assert names.parts(counts, names.dead_letters) == {"decode": 1}
