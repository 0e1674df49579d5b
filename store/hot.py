"""The hot store: recent events, alerts, the review queue, dead letters and runs, in one SQL database.

SQLite by default (a file in the output folder); any SQLAlchemy URL (PostgreSQL in production).
Every write is idempotent on its id: storing the same event twice leaves one row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.event import ALERT_LEVELS, DeadLetter, Event, raise_class, utcnow

SCHEMA_VERSION = 1

metadata = sa.MetaData()

events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(128), index=True),
    sa.Column("event_class", sa.String(16), nullable=False, index=True),
    sa.Column("score", sa.Float),
    sa.Column("alert_level", sa.String(16)),
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("received_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("night", sa.String(10), index=True),
    sa.Column("ra", sa.Float),
    sa.Column("dec", sa.Float),
    sa.Column("pos_error_deg", sa.Float),
    sa.Column("mag", sa.Float),
    sa.Column("mag_err", sa.Float),
    sa.Column("band", sa.String(16)),
    sa.Column("injected", sa.Boolean, nullable=False, default=False),
    sa.Column("reasons", sa.Text),
    sa.Column("rules_version", sa.String(64)),
    sa.Column("filter_version", sa.String(64)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("payload", sa.Text, nullable=False),  # the decoded event as JSON, without raw bytes
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(300), primary_key=True),
    sa.Column("event_id", sa.String(256), nullable=False, unique=True),
    sa.Column("level", sa.String(16), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("score", sa.Float),
    sa.Column("title", sa.Text),
    sa.Column("dedup_key", sa.String(300), nullable=False),
    sa.Column("injected", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

review_queue = sa.Table(
    "review_queue",
    metadata,
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, default="pending"),
    sa.Column("score", sa.Float),
    sa.Column("injected", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("dead_letter_id", sa.String(128), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False, index=True),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("origin", sa.Text),
    sa.Column("event_id", sa.String(256)),
    sa.Column("injected", sa.Boolean, nullable=False, default=False),
    sa.Column("received_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("summary", sa.Text),
)

thresholds = sa.Table(
    "thresholds",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),  # filters | classification
    sa.Column("document", sa.Text, nullable=False),  # the validated configuration, as JSON
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    # A restarted job sees packets of windows an earlier run already wrote: each run keeps its own row.
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("night", sa.String(10), index=True),
    sa.Column("received", sa.Integer, nullable=False),
    sa.Column("stored", sa.Integer, nullable=False),
    sa.Column("dead_letters", sa.Integer, nullable=False),
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.Column("late", sa.Integer, nullable=False),
    sa.Column("rate_per_min", sa.Float, nullable=False),
    sa.Column("expected_rate_per_min", sa.Float),
    sa.Column("rate_deviation", sa.Float),  # (rate - expected) / expected
    sa.Column("latency_p50_s", sa.Float),
    sa.Column("latency_p95_s", sa.Float),
    sa.Column("latency_p99_s", sa.Float),
    sa.Column("error_rate", sa.Float),
    sa.Column("queue_depth", sa.Integer),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

agent_metrics = sa.Table(
    "agent_metrics",
    metadata,
    # Per agent and window: the Agent Timeout runbook's "which agent is exceeding its budget".
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),  # events handed to the agent
    sa.Column("ok", sa.Integer, nullable=False),
    sa.Column("timeouts", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("skips", sa.Integer, nullable=False),
    sa.Column("over_budget", sa.Integer, nullable=False),  # waited longer than the budget
    sa.Column("retried", sa.Integer, nullable=False),  # needed more than one attempt
    sa.Column("latency_p50_ms", sa.Float),
    sa.Column("latency_p95_ms", sa.Float),
    sa.Column("latency_max_ms", sa.Float),
    sa.Column("budget_ms", sa.Integer, nullable=False),
    sa.Column("breaker_state", sa.String(16), nullable=False),  # closed | open | half_open, at the window's end
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

injection_reports = sa.Table(
    "injection_reports",
    metadata,
    # The injection test's results (`nightwatch inject`); the console and `nightwatch health` read the latest
    # critical recall from here (below 99% is SEV-2).
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("through", sa.String(16), nullable=False),  # batch | pubsub
    sa.Column("injected", sa.Integer, nullable=False),
    sa.Column("critical_recall", sa.Float),  # None when no critical event was injected
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("severity", sa.String(8)),
    sa.Column("report", sa.Text, nullable=False),  # the whole report as JSON
)

associations = sa.Table(
    "associations",
    metadata,
    sa.Column("trigger_id", sa.String(256), primary_key=True),  # the satellite event
    sa.Column("counterpart_id", sa.String(256), primary_key=True),  # the optical event
    sa.Column("separation_deg", sa.Float, nullable=False),
    sa.Column("time_offset_s", sa.Float, nullable=False),  # counterpart time minus trigger time
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

published = sa.Table(
    "published",
    metadata,
    # What publishers put on each source's topic, so the backlog (queue depth) can be measured against the
    # emulator, which has no monitoring API: published - received.
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

meta = sa.Table(
    "nightwatch_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# --- console: users, access, audit ---
# The operations console's tables (access/accounts.py, ops/sysconfig.py). The audit log is append-only:
# access/accounts.py offers no update or delete, and triggers refuse UPDATE and DELETE in the database itself.

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("email", sa.String(256), unique=True),  # the OIDC identity, when single sign-on is used
    sa.Column("role", sa.String(16)),  # None: may log in only to request access
    sa.Column("active", sa.Boolean, nullable=False, default=True),  # False: revoked, refused at once
    sa.Column("password_hash", sa.Text),  # scrypt, salted; None for single-sign-on-only accounts
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_login_at", sa.DateTime(timezone=True)),
)

role_grants = sa.Table(
    "role_grants",
    metadata,
    # Every change of a user's role (a revocation is a grant of None): the quarterly review's grant history.
    sa.Column("grant_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_name", sa.String(128), nullable=False, index=True),
    sa.Column("role", sa.String(16)),
    sa.Column("previous_role", sa.String(16)),
    sa.Column("granted_by", sa.String(160), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("request_id", sa.Integer),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

access_requests = sa.Table(
    "access_requests",
    metadata,
    sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_name", sa.String(128), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("justification", sa.Text, nullable=False),
    # pending -> (manager approves) -> security_review (Admin and above) -> granted; or rejected at either step
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("manager", sa.String(128)),
    sa.Column("manager_note", sa.Text),
    sa.Column("manager_at", sa.DateTime(timezone=True)),
    sa.Column("security_reviewer", sa.String(128)),
    sa.Column("security_note", sa.Text),
    sa.Column("security_at", sa.DateTime(timezone=True)),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(160), nullable=False, index=True),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("before", sa.Text),  # JSON
    sa.Column("after", sa.Text),  # JSON
    sa.Column("note", sa.Text),
)

alert_actions = sa.Table(
    "alert_actions",
    metadata,
    sa.Column("action_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(300), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),  # acknowledge | escalate | resolve
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

review_decisions = sa.Table(
    "review_decisions",
    metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(256), nullable=False, index=True),
    sa.Column("decision", sa.String(16), nullable=False),  # promote | reject | comment
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

config_documents = sa.Table(
    "config_documents",
    metadata,
    # Versioned system configuration (sources, notification channels, agent budgets), validated on the way in.
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("document", sa.Text, nullable=False),  # JSON
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# --- external API: keys and rate limits ---
# The external API's tables (access/apikeys.py, api/). A key is stored only as the sha256 of its token: the
# token is shown once at creation. Rate-limit buckets live here, not in a server's memory, so every API server
# behind the gateway draws from the same bucket per key.

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),  # public: shown in lists, used to revoke
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("user_name", sa.String(128), nullable=False, index=True),  # the owner, a console user
    sa.Column("role", sa.String(16), nullable=False),  # never above the owner's role
    sa.Column("note", sa.Text),
    sa.Column("rate_per_min", sa.Float),  # None: the server's default
    sa.Column("burst", sa.Integer),  # None: the server's default
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_by", sa.String(160)),
)

api_rate_buckets = sa.Table(
    "api_rate_buckets",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("refilled_at", sa.Float, nullable=False),  # unix seconds: compared exactly in the update's WHERE
)

# The cone search's bounding-box prefilter reads dec and ra; created on new stores here and on older ones by
# the API at start-up (api/queries.ensure_indexes).
events_position_index = sa.Index("ix_events_dec_ra", events.c.dec, events.c.ra)

# --- notifications, on-call, maintenance ---
# ops/notify.py, ops/oncall.py, ops/maintenance.py. One `deliveries` row per alert, channel, action
# and level: its key is the claim that makes a redelivered alert send once, and the row carries every attempt.

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_key", sa.String(512), nullable=False, unique=True),  # alert|channel|action|level
    sa.Column("alert_id", sa.String(300), nullable=False, index=True),  # or digest:..., maintenance:...
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # trigger | acknowledge | resolve | escalate-N | digest | ...
    sa.Column("level", sa.String(16)),
    sa.Column("night", sa.String(10), index=True),  # the alert's observing night: the nightly budget
    sa.Column("recipient", sa.String(256)),  # a person's address, for escalations
    # delivered | failed | retrying | suppressed | throttled
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),  # attempts made so far
    sa.Column("response_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), index=True),
    sa.Column("notice", sa.Text, nullable=False),  # what is sent (JSON, no secrets): rendered per channel
    sa.Column("history", sa.Text, nullable=False),  # JSON list: one entry per attempt (at, status, code, error)
    sa.Column("digest_id", sa.String(64)),  # throttled rows: the digest that carried them
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("alert_id", sa.String(300), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),  # index in oncall.yaml's ladder
    sa.Column("after_min", sa.Integer, nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("person", sa.String(128)),
    sa.Column("channel", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),  # paged | skipped (nobody covers the role now)
    sa.Column("note", sa.Text),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("window_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),  # rolling | brief | extended (config/maintenance.yaml)
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("silence", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # scheduled | cancelled
    sa.Column("announced_by", sa.String(160), nullable=False),
    sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_by", sa.String(160)),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    sa.Column("cancel_reason", sa.Text),
)

for _verb in ("UPDATE", "DELETE"):
    sa.event.listen(
        audit_log,
        "after_create",
        sa.DDL(
            f"CREATE TRIGGER audit_log_no_{_verb.lower()} BEFORE {_verb} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )
sa.event.listen(
    audit_log,
    "after_create",
    sa.DDL(
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$; "
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    ).execute_if(dialect="postgresql"),
)

ALERT_TITLES = {"CRITICAL": "Critical", "HIGH": "High"}


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def alert_id_for(event_id: str) -> str:
    return f"alert:{event_id}"


def event_row(event: Event, stored_at: datetime) -> dict[str, Any]:
    return {
        **event.columns(),
        "reasons": json.dumps(event.reasons),
        "rules_version": event.lineage.get("rules_version"),
        "filter_version": event.lineage.get("filter_version"),
        "run_id": event.lineage.get("run_id"),
        "payload": event.to_json(),
        "stored_at": stored_at,
    }


def alert_row(event: Event, created_at: datetime) -> dict[str, Any]:
    alert_id = alert_id_for(event.event_id)
    where = f" at RA {event.ra:.4f}, Dec {event.dec:+.4f}" if event.ra is not None else ""
    return {
        "alert_id": alert_id,
        "event_id": event.event_id,
        "level": event.alert_level,
        "status": "open",
        "score": event.score,
        "title": f"{event.alert_level}: {event.source} {event.kind}{where}",
        "dedup_key": alert_id,
        "injected": event.injected,
        "created_at": created_at,
    }


def review_row(event: Event, created_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "status": "pending",
        "score": event.score,
        "injected": event.injected,
        "created_at": created_at,
    }


def dead_letter_row(letter: DeadLetter, stored_at: datetime) -> dict[str, Any]:
    return {
        "dead_letter_id": letter.dead_letter_id,
        "source": letter.source,
        "stage": letter.stage,
        "reason": letter.reason,
        "payload": letter.payload,
        "origin": letter.origin,
        "event_id": letter.event_id,
        "injected": letter.injected,
        "received_time": letter.received_time,
        "stored_at": stored_at,
    }


class HotStore:
    """The SQL hot store. Create with a URL; `ensure_schema()` creates or checks the tables."""

    def __init__(self, url: str):
        self.url = url
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine: Engine = sa.create_engine(url, connect_args=connect_args, future=True)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def ensure_schema(self) -> list[str]:
        """Create missing tables and migrate an older layout; returns what was migrated.

        New tables are created; a new column that may be empty is added (ALTER TABLE ADD COLUMN) and logged in
        `nightwatch_meta`. A store newer than this Nightwatch, or one needing a change that cannot be made in
        place (a new key or required column), is refused with a message saying so.
        """
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as conn:
            meta.create(conn, checkfirst=True)
            current = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        if current is not None and int(current) > SCHEMA_VERSION:
            raise RuntimeError(
                f"hot store {self.url} has schema version {current}, newer than this Nightwatch ({SCHEMA_VERSION})"
            )
        metadata.create_all(self.engine)
        migrated = self._add_missing_columns()
        with self.engine.begin() as conn:
            if current is None:
                conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(current) < SCHEMA_VERSION:
                conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
                migrated.append(f"schema version {current} -> {SCHEMA_VERSION}")
            if migrated:
                log_row = {"key": f"migrated {utcnow().isoformat()}", "value": json.dumps(migrated)}
                conn.execute(meta.insert().values(**log_row))
        return migrated

    def _add_missing_columns(self) -> list[str]:
        inspector = sa.inspect(self.engine)
        migrated = []
        for table in metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if column.primary_key or not column.nullable:
                    raise RuntimeError(
                        f"hot store {self.url} has an older layout of table {table.name} (missing "
                        f"{column.name}, which cannot be added in place): point Nightwatch at a new store"
                    )
                kind = column.type.compile(dialect=self.engine.dialect)
                with self.engine.begin() as conn:
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                migrated.append(f"added {table.name}.{column.name}")
        return migrated

    def close(self) -> None:
        self.engine.dispose()

    def _insert_new(self, table: sa.Table, key: str, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert the rows whose key is not stored yet; return the keys that were new."""
        if not rows:
            return set()
        unique = {row[key]: row for row in rows}
        with self.engine.begin() as conn:
            column = table.c[key]
            existing = set(conn.execute(sa.select(column).where(column.in_(list(unique)))).scalars())
            fresh = [row for row_key, row in unique.items() if row_key not in existing]
            if fresh:
                conn.execute(_insert_ignoring_conflicts(self.engine, table, key), fresh)
        return {row[key] for row in fresh}

    def add_events(self, batch: Iterable[Event]) -> set[str]:
        now = utcnow()
        return self._insert_new(events, "event_id", [event_row(event, now) for event in batch])

    def add_alerts(self, batch: Iterable[Event]) -> set[str]:
        now = utcnow()
        return self._insert_new(alerts, "alert_id", [alert_row(event, now) for event in batch])

    def add_reviews(self, batch: Iterable[Event]) -> set[str]:
        now = utcnow()
        return self._insert_new(review_queue, "event_id", [review_row(event, now) for event in batch])

    def add_dead_letters(self, batch: Iterable[DeadLetter]) -> set[str]:
        now = utcnow()
        return self._insert_new(dead_letters, "dead_letter_id", [dead_letter_row(letter, now) for letter in batch])

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

    def top_alerts(self, run_id: str, limit: int = 5) -> list[tuple[str, dict[str, Any]]]:
        """The highest-level, highest-score alerts this run created: a line each, and the event's enrichments."""
        level_rank = sa.case({"CRITICAL": 0, "HIGH": 1}, value=alerts.c.level, else_=2)
        query = (
            sa.select(alerts.c.title, alerts.c.score, events.c.event_id, events.c.event_time, events.c.payload)
            .join(events, events.c.event_id == alerts.c.event_id)
            .where(events.c.run_id == run_id)
            .order_by(level_rank, alerts.c.score.desc(), events.c.event_time)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            (f"{row.title} (score {row.score:.2f}, {row.event_id})", json.loads(row.payload).get("enrichments", {}))
            for row in rows
        ]

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

    def apply_association(self, link: Any) -> list[Event] | None:
        """Store a trigger-counterpart link and raise both events' classes by one level.

        Returns None if the link was already stored; otherwise the events whose raise created or raised an
        alert (for publishing). A raised event records its partner and former class in its lineage.
        """
        with self.engine.begin() as conn:
            pair = (associations.c.trigger_id == link.trigger_id) & (
                associations.c.counterpart_id == link.counterpart_id
            )
            if conn.execute(sa.select(associations.c.trigger_id).where(pair)).first() is not None:
                return None
            now = utcnow()
            conn.execute(
                associations.insert().values(
                    trigger_id=link.trigger_id,
                    counterpart_id=link.counterpart_id,
                    separation_deg=link.separation_deg,
                    time_offset_s=link.time_offset_s,
                    created_at=now,
                )
            )
            alerting = []
            for event_id, partner in ((link.trigger_id, link.counterpart_id), (link.counterpart_id, link.trigger_id)):
                payload = conn.execute(sa.select(events.c.payload).where(events.c.event_id == event_id)).scalar()
                if payload is None:
                    continue
                event = Event.model_validate_json(payload)
                raised = _raised(event, partner, link)
                conn.execute(
                    events.update()
                    .where(events.c.event_id == event_id)
                    .values(
                        event_class=raised.event_class,
                        alert_level=raised.alert_level,
                        reasons=json.dumps(raised.reasons),
                        payload=raised.to_json(),
                    )
                )
                if raised.event_class == event.event_class:
                    continue
                if raised.alert_level in ("CRITICAL", "HIGH"):
                    row = alert_row(raised, now)
                    conn.execute(alerts.delete().where(alerts.c.alert_id == row["alert_id"]))
                    conn.execute(alerts.insert().values(**row))
                    alerting.append(raised)
                elif raised.event_class == "interesting":
                    conn.execute(
                        _insert_ignoring_conflicts(self.engine, review_queue, "event_id"), [review_row(raised, now)]
                    )
        return alerting

    def alert_volume_by_night(self, include_injected: bool = False) -> dict[str, int]:
        """Alerts (CRITICAL and HIGH) per observing night: the guide's alert-volume panel (< 50 a night)."""
        query = (
            sa.select(events.c.night, sa.func.count())
            .select_from(alerts.join(events, events.c.event_id == alerts.c.event_id))
            .group_by(events.c.night)
            .order_by(events.c.night)
        )
        if not include_injected:
            query = query.where(alerts.c.injected.is_(False))
        with self.engine.connect() as conn:
            return {str(night): int(count) for night, count in conn.execute(query)}

    def count(self, table: sa.Table, **where: Any) -> int:
        query = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts_by(self, table: sa.Table, column: str) -> dict[str, int]:
        query = sa.select(table.c[column], sa.func.count()).group_by(table.c[column])
        with self.engine.connect() as conn:
            return {str(key): int(value) for key, value in conn.execute(query)}


def _raised(event: Event, partner: str, link: Any) -> Event:
    partners = {name for name in event.lineage.get("associated_with", "").split(",") if name} | {partner}
    new_class = raise_class(event.event_class)
    lineage = {**event.lineage, "associated_with": ",".join(sorted(partners))}
    if new_class != event.event_class:
        lineage["raised_from"] = event.event_class
    reason = f"multi-messenger: associated with {partner} ({link.separation_deg:.2f} deg, {link.time_offset_s:+.0f} s)"
    return event.model_copy(
        update={
            "event_class": new_class,
            "alert_level": ALERT_LEVELS[new_class],
            "reasons": [*event.reasons, reason],
            "lineage": lineage,
        }
    )


def _insert_ignoring_conflicts(engine: Engine, table: sa.Table, key: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent writer of the same id is not an error."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return table.insert()
    return insert(table).on_conflict_do_nothing(index_elements=[key])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while the pipeline writes; a busy timeout waits for other writers.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
