"""The audit log's hash chain: each row's hash is sha256 over the previous row's hash and the row's canonical
content, so a row changed, deleted or inserted outside `access.audit` breaks the chain from there on.

Kept here (not in access/) because the migration that hashed the rows written before the chain uses it too.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from core.event import as_utc

GENESIS = "0" * 64  # the "previous hash" of the first row
HEAD = "head"  # the one row of `audit_chain`
FIELDS = ("at", "actor", "action", "target", "before", "after", "note")


def canonical(row: Any) -> str:
    """The row's content as one JSON text: time (UTC, microseconds), actor, action, target, before, after, note.
    Its place in the log is in the chain itself: a row moved, removed or added breaks the next row's hash."""
    values = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    content = {name: values.get(name) for name in FIELDS}
    at = content["at"]
    if isinstance(at, str):  # as a driver may return it untyped
        at = datetime.fromisoformat(at)
    if isinstance(at, datetime):
        content["at"] = as_utc(at).isoformat(timespec="microseconds")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(previous: str, row: Any) -> str:
    return hashlib.sha256(f"{previous}\n{canonical(row)}".encode()).hexdigest()
