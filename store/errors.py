"""Which hot-store failures mean the store itself is unreachable (not one bad row): not worth splitting a batch."""

from __future__ import annotations

import sqlalchemy as sa


def store_unreachable(exc: BaseException) -> bool:
    """True for a connection-level failure (refused, dropped, the file cannot be opened), False for a row the
    store refuses (too long, NUL, an unencodable character, a constraint)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, ConnectionError))


def row_refused(exc: BaseException) -> str:
    """Why the store refused a row, in one line: the driver's message without the SQL and its parameters."""
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else exc
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {message}"[:1000]
