"""The local runner fixes' version guard: they patch private Beam internals, so they apply only to the Beam
they were written for.

`reader.py` and `dofns.py` replace or wrap private methods of Beam's BundleBasedDirectRunner (one a copy of a
private method body). On any other Beam version they are not installed: one warning is logged and the job runs
on Beam's stock local runner (slower; no flow control; a drain cannot pause the reader). Each module also
records a sha256 of the upstream source it replaces or wraps (`UPSTREAM_SHA256`);
tests/test_local_runner_guard.py fails when that source changes, so an upgrade of the pin says which fix to
review.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
from typing import Any

log = logging.getLogger(__name__)

# The Beam release whose private internals the fixes were written against (setup.py pins it).
FIXED_FOR_BEAM = "2.77.0"
_warned = False


def fixes_apply() -> bool:
    """True if the installed Beam is the one the fixes were written for; else warn once and return False."""
    global _warned
    import apache_beam

    if apache_beam.__version__ == FIXED_FOR_BEAM:
        return True
    if not _warned:
        _warned = True
        log.warning(
            "apache-beam %s is installed, but the local runner fixes (pipeline/runners/local) were written for %s: "
            "they are NOT applied and the job runs on Beam's stock local runner (10-message Pub/Sub pulls with a "
            "30 s timeout, every DoFn set up and torn down every bundle). Review the fixes against this Beam, then "
            "update FIXED_FOR_BEAM and the UPSTREAM_SHA256 hashes.",
            apache_beam.__version__,
            FIXED_FOR_BEAM,
        )
    return False


def resolve(dotted: str) -> Any:
    """The object named `package.module.Class.attribute` (the longest importable prefix is the module)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def source_sha256(dotted: str) -> str:
    """sha256 of the source text of the upstream function or method `dotted`."""
    return hashlib.sha256(inspect.getsource(resolve(dotted)).encode()).hexdigest()
