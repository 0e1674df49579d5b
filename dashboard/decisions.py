"""Review decisions into the archive tier: one small Avro file per decision, beside the raw packets.

`archive/decisions/night=NIGHT/decision-<id>.avro`, so the archive holds what people decided about an event
along with the packet itself (the event's lineage in the hot store carries it too). The file name comes from
the decision's content, and it is written atomically, so writing the same decision again changes nothing.
"""

from __future__ import annotations

import hashlib
import io

import fastavro

from ops.responses import ReviewDecision
from store.tiers import join, write_atomically

DECISION_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "ReviewDecision",
        "namespace": "nightwatch.archive",
        "doc": "A person's decision on a review-queue event.",
        "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "decision", "type": "string"},
            {"name": "status", "type": "string"},
            {"name": "actor", "type": "string"},
            {"name": "note", "type": "string"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        ],
    }
)


def decision_path(archive_root: str, night: str, decision: ReviewDecision) -> str:
    digest = hashlib.sha256(f"{decision.event_id}|{decision.decision}|{decision.at.isoformat()}".encode())
    return join(archive_root, "decisions", f"night={night}", f"decision-{digest.hexdigest()[:20]}.avro")


def archive_decision(archive_root: str, night: str, decision: ReviewDecision) -> str:
    buffer = io.BytesIO()
    record = {
        "event_id": decision.event_id,
        "decision": decision.decision,
        "status": decision.status,
        "actor": decision.actor,
        "note": decision.note,
        "at": decision.at,
    }
    fastavro.writer(buffer, DECISION_SCHEMA, [record], codec="deflate")
    path = decision_path(archive_root, night, decision)
    write_atomically(path, buffer.getvalue())
    return path
