"""The events' Beam coder: a registered, deterministic encoding instead of pickling pydantic models.

An `Event` crossing a stage boundary (a shuffle, a stateful step, another worker) is encoded as its raw packet
bytes, length-prefixed, then the rest of the event as JSON with sorted keys (orjson): the same event always
encodes to the same bytes, whatever order its mappings were built in, and decoding validates it again (a
corrupt or hand-made element fails loudly instead of becoming an unvalidated model). Registered on import for
`core.event.Event`; steps that produce events declare it (`with_output_types(Event)`), so the runner uses it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pydantic_core
from apache_beam import coders

from core.event import Event

_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def _plain(value: object) -> object:
    """What orjson does not write itself, as plain JSON values."""
    if isinstance(value, datetime):  # a subclass, e.g. Pub/Sub's DatetimeWithNanoseconds
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar in an agent's finding
        return value.item()
    return pydantic_core.to_jsonable_python(value)  # anything else the way the hot store would keep it


class EventCoder(coders.Coder):
    def encode(self, event: Event) -> bytes:
        body = orjson.dumps(event.model_dump(exclude={"raw"}), option=_JSON, default=_plain)
        return len(event.raw).to_bytes(8, "big") + event.raw + body

    def decode(self, encoded: bytes) -> Event:
        size = int.from_bytes(encoded[:8], "big")
        event = Event.model_validate_json(encoded[8 + size :])
        event.raw = encoded[8 : 8 + size]
        return event

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self) -> type:
        return Event


coders.registry.register_coder(Event, EventCoder)
