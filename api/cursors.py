"""Opaque page cursors and the keyset condition behind them.

A listing is ordered by a unique key (e.g. event time, then event id); its cursor holds the listing's name and
the last key of a page, and the next page is the rows strictly after that key (`after`).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from api.errors import invalid
from core.event import as_utc

Key = tuple[Any, ...]


def encode_cursor(listing: str, key: Key) -> str:
    """An opaque cursor: the listing's name and the last key, as URL-safe base64 JSON."""
    values = [value.isoformat() if isinstance(value, datetime) else value for value in key]
    raw = json.dumps([listing, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None, kinds: Sequence[type]) -> Key | None:
    """The key a cursor holds, checked against the listing it was made for; 422 if it is not one of ours."""
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        name, *values = data
        if name != listing or len(values) != len(kinds):
            raise ValueError("another listing's cursor")
        key = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                key.append(as_utc(datetime.fromisoformat(value)))
            elif kind is float:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ValueError("not a number")
                key.append(float(value))
            else:
                if not isinstance(value, str):
                    raise ValueError("not a string")
                key.append(value)
        return tuple(key)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(f"invalid cursor for {listing}: use the `next` link of the previous page", "cursor") from exc


def after(columns: Sequence[sa.ColumnElement], key: Key) -> sa.ColumnElement[bool]:
    """Rows strictly after `key` in the order of `columns`, spelled out (portable, and typed per column)."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        clauses.append(sa.and_(*equal, column > key[i]))
    return sa.or_(*clauses)
