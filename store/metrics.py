"""Runs and metrics: run summaries, window metrics per source and per agent, and what publishers put on topics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.event import utcnow
from store.schema import agent_metrics, metrics, published, runs


class MetricQueries:
    """The hot store's runs and metric windows (a part of `store.hot.HotStore`)."""

    engine: sa.Engine

    def record_run(self, run_id: str, started_at: datetime, finished_at: datetime, summary: dict[str, Any]) -> None:
        row = {
            "run_id": run_id,
            "started_at": started_at,
            "finished_at": finished_at,
            "summary": json.dumps(summary, sort_keys=True, default=str),
        }
        with self.engine.begin() as conn:
            conn.execute(runs.delete().where(runs.c.run_id == run_id))
            conn.execute(runs.insert().values(**row))

    def add_published(self, source: str, count: int) -> None:
        """Count packets a publisher put on a source's topic (for queue depth against the emulator)."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                published.update()
                .where(published.c.source == source)
                .values(count=published.c.count + count, updated_at=utcnow())
            ).rowcount
            if not updated:
                conn.execute(published.insert().values(source=source, count=count, updated_at=utcnow()))

    def queue_depth(self, source: str) -> int | None:
        """Published but not yet received on a source's topic (duplicates count on both sides); None if unknown.

        Received is what the metrics windows counted, so packets of windows not yet closed count as queued.
        """
        with self.engine.connect() as conn:
            sent = conn.execute(sa.select(published.c.count).where(published.c.source == source)).scalar()
            if sent is None:
                return None
            seen = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(metrics.c.received), 0)).where(metrics.c.source == source)
            ).scalar_one()
        return max(0, int(sent) - int(seen))

    def upsert_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write window metrics; a later firing of the same window (late data) replaces the earlier one."""
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    metrics.delete().where(
                        (metrics.c.source == row["source"])
                        & (metrics.c.window_start == row["window_start"])
                        & (metrics.c.run_id == row["run_id"])
                    )
                )
            if rows:
                conn.execute(metrics.insert(), list(rows))

    def upsert_agent_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write agent windows; a later firing of the same window replaces the earlier row."""
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    agent_metrics.delete().where(
                        (agent_metrics.c.agent == row["agent"])
                        & (agent_metrics.c.window_start == row["window_start"])
                        & (agent_metrics.c.run_id == row["run_id"])
                    )
                )
            if rows:
                conn.execute(agent_metrics.insert(), list(rows))

    def agent_windows(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Agent metric rows, oldest first (since a time, if given)."""
        query = sa.select(agent_metrics).order_by(agent_metrics.c.window_start, agent_metrics.c.agent)
        if since is not None:
            query = query.where(agent_metrics.c.window_end >= since)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
