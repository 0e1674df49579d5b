"""Isolation, never amplification: a batch write that fails is split until only the items that fail alone remain.

`isolate(items, write)` calls `write(items)`; if it raises, the batch is cut in halves and each half is written on
its own, down to single items. So one bad row costs its own dead letter, with its own reason, and every other row
is written (about 2·log2(n) extra calls per bad row). A failure that says the destination itself is down
(`fatal(exc)` true, e.g. the store unreachable) is not bisected: every item not yet written fails with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def isolate(
    items: Sequence[T], write: Callable[[list[T]], R], fatal: Callable[[Exception], bool] = lambda exc: False
) -> tuple[list[R], list[tuple[T, Exception]]]:
    """Write `items`, splitting on failure; returns (the results of the writes that succeeded, each item that
    failed on its own with its exception)."""
    results: list[R] = []
    failures: list[tuple[T, Exception]] = []
    pending: list[list[T]] = [list(items)] if items else []
    while pending:
        chunk = pending.pop()
        try:
            results.append(write(chunk))
        except Exception as exc:  # noqa: BLE001 - the caller turns each failed item into a dead letter
            if len(chunk) == 1:
                failures.append((chunk[0], exc))
            elif fatal(exc):
                failures.extend((item, exc) for item in chunk)
                failures.extend((item, exc) for rest in pending for item in rest)
                pending = []
            else:
                middle = len(chunk) // 2
                pending += [chunk[middle:], chunk[:middle]]  # the first half is written first
    return results, failures
