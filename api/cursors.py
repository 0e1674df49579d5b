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


# The longest string a key holds (store/schema.py: event ids 256, alert ids 300), with room to spare.
MAX_KEY_CHARS = 512


def _key_time(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("not a time")
    moment = datetime.fromisoformat(value)  # a time without a zone is UTC, as SQLite returns them
    # Year 1 at +05:00 or year 9999 at -05:00 has no UTC time a database can hold: refuse rather than overflow.
    if not 1 < moment.year < 9999:
        raise ValueError("a time out of range")
    return as_utc(moment)


def _key_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_KEY_CHARS or "\x00" in value:
        raise ValueError("not a key string")
    value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
    return value


def _key_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    number = float(value)  # a 400-digit integer raises OverflowError
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def decode_cursor(listing: str, cursor: str | None, kinds: Sequence[type]) -> Key | None:
    """The key a cursor holds, checked against the listing it was made for; 422 if it is not one of ours.

    Every value is checked for what the stores can compare against (a time a database holds, a finite number,
    text without NUL or lone surrogates), so a crafted cursor is a 422, never a failed query.
    """
    if not cursor:
        return None
    try:
        if len(cursor) > 4 * MAX_KEY_CHARS:
            raise ValueError("too long")
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, list) or not data:
            raise ValueError("not a cursor")
        name, *values = data
        if name != listing or len(values) != len(kinds):
            raise ValueError("another listing's cursor")
        key = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                key.append(_key_time(value))
            elif kind is float:
                key.append(_key_number(value))
            else:
                key.append(_key_text(value))
        return tuple(key)
    except (ValueError, TypeError, OverflowError, UnicodeError, RecursionError) as exc:
        raise invalid(f"invalid cursor for {listing}: use the `next` link of the previous page", "cursor") from exc


def after(columns: Sequence[sa.ColumnElement], key: Key) -> sa.ColumnElement[bool]:
    """Rows strictly after `key` in the order of `columns`, spelled out (portable, and typed per column)."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        clauses.append(sa.and_(*equal, column > key[i]))
    return sa.or_(*clauses)
