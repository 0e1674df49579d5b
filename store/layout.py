"""Where a run writes: the hot store URL and the tier roots under one output folder."""

from __future__ import annotations

from dataclasses import dataclass

from config.environment import environment
from store.hot import sqlite_url
from store.tiers import join


@dataclass(frozen=True)
class Outputs:
    """Where a run writes: the hot store URL and the tier roots."""

    db_url: str
    warm_root: str
    archive_root: str
    dead_letter_root: str

    @classmethod
    def under(cls, output: str, db_url: str | None) -> Outputs:
        """Tiers under `output`; the hot store at `db_url`, else $NIGHTWATCH_DB_URL, else a SQLite file there."""
        db_url = db_url or environment().db_url
        if db_url is None:
            if "://" in output:
                raise ValueError(f"--output {output} is remote: give the hot store with --db_url")
            db_url = sqlite_url(join(output, "nightwatch.db"))
        return cls(db_url, join(output, "warm"), join(output, "archive"), join(output, "dead_letters"))
