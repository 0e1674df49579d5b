"""setup.py installs what the Beam job needs (all a Dataflow worker gets with --setup_file); the console and
the API are extras."""

from __future__ import annotations

import ast
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

# The packages a job runs (the job-without-web contract in .importlinter), with the dev tools the streaming
# job imports (the Pub/Sub emulator helpers).
JOB = ("pipeline", "transforms", "agents", "core", "store", "ops", "access", "config", "devtools/pubsub.py")
PROJECT = {"pipeline", "transforms", "agents", "core", "store", "ops", "access", "config", "devtools", "tests"}
WEB = {"streamlit", "fastapi", "uvicorn", "fastapi-offline"}
OPTIONAL_RUNNER = REPO / "pipeline" / "runners" / "dask"  # `--runner dask`, the `dask` extra


def assigned(name: str):
    """The literal value assigned to `name` at the top of setup.py (EXTRAS["all"] is derived)."""
    for node in ast.parse((REPO / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise KeyError(name)


def closure(requirements: list[str]) -> set[str]:
    """Every distribution the requirements install, their dependencies included (as installed here)."""
    seen: set[str] = set()
    todo = [(Requirement(text), "") for text in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        extras = sorted(requirement.extras)
        key = name + "".join(f"[{e}]" for e in extras)
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        for text in metadata.requires(requirement.name) or []:
            todo += [(Requirement(text), e) for e in ["", *extras]]
    return {key for key in seen if "[" not in key}


def _guards_import_error(node: ast.AST) -> bool:
    """A `try` whose handler catches ImportError (or ModuleNotFoundError): its body's imports are optional."""
    if not isinstance(node, ast.Try):
        return False
    caught = [handler.type for handler in node.handlers if handler.type is not None]
    names = {n.id for t in caught for n in ast.walk(t) if isinstance(n, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def job_imports() -> set[str]:
    """Third-party top-level modules the job's packages import."""
    found = set()
    for target in JOB:
        path = REPO / target
        for source in [path] if path.is_file() else path.rglob("*.py"):
            if OPTIONAL_RUNNER in source.parents:
                continue  # the Dask runner's imports come with its own extra (checked below)
            tree = ast.parse(source.read_text())
            optional = {
                id(inner)
                for node in ast.walk(tree)
                if _guards_import_error(node)
                for statement in node.body
                for inner in ast.walk(statement)
            }
            for node in ast.walk(tree):
                if id(node) in optional:  # `try: import x / except ImportError:` works without x: not a requirement
                    continue
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in PROJECT}


def test_web_packages_are_extras_not_job_requirements():
    requires, extras = assigned("REQUIRES"), assigned("EXTRAS")
    assert not {canonicalize_name(Requirement(text).name) for text in requires} & WEB
    assert {Requirement(text).name for text in extras["console"]} == {"streamlit", "pillow"}  # pillow: cutout PNGs
    assert {Requirement(text).name for text in extras["api"]} == {
        "fastapi",
        "uvicorn",
        "fastapi-offline",  # /docs offline
        "jinja2",  # the status page
        "pillow",  # cutouts as PNG
    }
    assert "pytest" in {Requirement(text).name for text in extras["dev"]}


def test_install_requires_covers_every_module_the_job_imports():
    installed = closure(assigned("REQUIRES"))
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module)
        for module in job_imports()
        if not {canonicalize_name(dist) for dist in providers.get(module, [])} & installed
    }
    assert not missing, f"the job imports modules install_requires does not install: {missing}"
    assert not WEB & installed, "a web package reaches a Dataflow worker through install_requires"


def test_the_dask_runner_comes_with_its_extra():
    """`--runner dask` needs dask.distributed, installed by the `dask` extra (and `all`), not by every job."""
    extras = assigned("EXTRAS")
    assert {canonicalize_name(Requirement(text).name) for text in extras["dask"]} == {"dask"}
    assert "distributed" in closure(extras["dask"])
    assert not {canonicalize_name(Requirement(text).name) for text in assigned("REQUIRES")} & {"dask", "distributed"}
