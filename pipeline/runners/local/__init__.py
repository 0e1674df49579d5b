"""Fixes of Beam's local streaming runner (version-guarded; see README.md beside this file)."""

from pipeline.runners.local.dofns import restore_dofn_reuse
from pipeline.runners.local.reader import restore_local_reader


def restore_local_runner() -> None:
    """Undo every fix: Beam's original methods back, the fixes' process-wide state reset."""
    restore_local_reader()
    restore_dofn_reuse()
