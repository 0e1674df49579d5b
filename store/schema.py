"""The hot store's schema: every table, in one SQLAlchemy `metadata`, and the schema version.

The tables are the head of the migrations in `store/migrations/` (Alembic): a change here comes with a new
revision there, and `SCHEMA_VERSION` is that revision's number (tests/test_store_schema.py checks they agree).

Why this module is long: it is the one `metadata` Alembic and the tests compare the revisions with; split into
modules, every table would still have to be imported here to be in it.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 11

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
    sa.Column("event_id", sa.String(256), index=True),  # indexed: a stored event resolves its letters
    sa.Column("injected", sa.Boolean, nullable=False, default=False),
    sa.Column("received_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    # Set when the event this letter is about was stored after all (a rerun): `verify` and health skip it.
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
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
    # Set when this version put a registered release in force (`nightwatch release promote|rollback`).
    sa.Column("release_id", sa.Integer),
)

releases = sa.Table(
    "releases",
    metadata,
    # Registered versions of the cuts or rules (`nightwatch release`): every one kept, whatever became of it.
    sa.Column("release_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),  # filters | classification
    sa.Column("document", sa.Text, nullable=False),  # the validated configuration, as JSON
    sa.Column("author", sa.String(160), nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # registered | shadow | canary | promoted | retired (replaced in force) | rolled_back
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("share", sa.Float),  # the canary's share of events
    sa.Column("trial_started_at", sa.DateTime(timezone=True)),  # when the shadow or canary began
    sa.Column("report", sa.Text),  # the latest shadow decision-diff report, as JSON
)

procedure_runs = sa.Table(
    "procedure_runs",
    metadata,
    # The guide's procedures run as one command (`nightwatch deploy`, `nightwatch system-test`): each step's
    # outcome and evidence, so the console shows the last results.
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),  # deploy | system_test
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("passed", sa.Boolean),  # None while running
    sa.Column("report", sa.Text, nullable=False),  # {"steps": [{"name", "passed", "evidence", ...}], ...}
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
    # Revision 0004, the runbook's steps 2 and 5: CPU time the agent's calls used, the worker's memory (RSS), and
    # the window's slowest events as JSON [{event_id, latency_ms, size_bytes, status}].
    sa.Column("cpu_ms", sa.Float),
    sa.Column("memory_mb", sa.Float),
    sa.Column("slowest", sa.Text),
)

heartbeats = sa.Table(
    "heartbeats",
    metadata,
    # Revision 0004: each running job or worker's latest beat (High queue depth step 1; Critical alert not sent
    # step 1 for the notifier). One row per worker, replaced every few seconds.
    sa.Column("worker_id", sa.String(160), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),  # stream | batch | notifier
    sa.Column("run_id", sa.String(64)),
    sa.Column("host", sa.String(128)),
    sa.Column("pid", sa.Integer),
    sa.Column("state", sa.String(16), nullable=False),  # running | paused | draining | stopped
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("throughput_per_s", sa.Float),
    sa.Column("backlog", sa.Integer),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text),
)

console_faults = sa.Table(
    "console_faults",
    metadata,
    # Revision 0004: the console's own faults (a page that failed to render, a panel that could not refresh),
    # recorded when they happen: the guide's SEV-4, "cosmetic / dashboard glitch".
    sa.Column("fault_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("page", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # render_error | stale_panel
    sa.Column("detail", sa.Text),
    sa.Column("user_name", sa.String(128)),
)

schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    # Revision 0006: each scheduled run and its outcome (ops/schedule.py); checklist items also who ticked them.
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(96), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # job | checklist
    sa.Column("task", sa.String(160), nullable=False),
    sa.Column("owner", sa.String(64)),  # checklist: On-call | Ops team
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(16), nullable=False),  # running | ok | failed
    sa.Column("exit_code", sa.Integer),
    sa.Column("detail", sa.Text),  # the command's last lines
    sa.Column("done_by", sa.String(128)),
    sa.Column("done_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sa.Index("ix_schedule_runs_job_due", "job", "due_at"),
)

login_throttle = sa.Table(
    "login_throttle",
    metadata,
    # Revision 0005: failed logins and lockouts per account and per client address (access/throttle.py).
    sa.Column("subject", sa.String(80), primary_key=True),  # "user:<sha256>" or "client:<sha256>"
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.Float, nullable=False),  # unix seconds; 0 when not locked
)

intake_state = sa.Table(
    "intake_state",
    metadata,
    # Revision 0004: `nightwatch intake pause|resume`; a running streaming job polls it. source "*" = every source.
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text),
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
    # The chance of an unrelated transient there (core/association.py); None for links stored before it existed.
    sa.Column("chance_probability", sa.Float, nullable=True),
    # Whether the link raised the events' classes (False: too likely by chance, or the trigger's cap reached).
    sa.Column("raised", sa.Boolean, nullable=False, server_default=sa.true()),
)

lightcurve = sa.Table(
    "lightcurve",
    metadata,
    # Every point of an object's light curve that any of its packets carried (core/decoders/lightcurve.py): one
    # row per point however many later packets repeat it. Kept while the hot store holds an event of the object.
    sa.Column("object_id", sa.String(128), primary_key=True),
    sa.Column("point_id", sa.String(96), primary_key=True),  # candid / diaSourceId, or nd:… / fp:… / fs:…
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # detection | nondetection | forced
    sa.Column("mjd", sa.Float, nullable=False),  # modified Julian date, UTC
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("band", sa.String(16)),
    sa.Column("mag", sa.Float),
    sa.Column("mag_err", sa.Float),
    sa.Column("limit_mag", sa.Float),  # the 5-sigma limit of a non-detection (or the detection's image)
    sa.Column("flux", sa.Float),  # Rubin nJy; ZTF forced photometry DN
    sa.Column("flux_err", sa.Float),
    sa.Column("event_id", sa.String(256), nullable=False),  # the first stored packet that carried it
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
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
    # sha256 over the previous row's hash and this row's canonical content (access/audit.py): a changed,
    # deleted or forged row breaks the chain (`nightwatch audit verify`).
    sa.Column("row_hash", sa.String(64)),
)

# The head of the audit chain: one row, locked by each append (SELECT ... FOR UPDATE), so appends are serial.
audit_chain = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("name", sa.String(16), primary_key=True),  # always "head"
    sa.Column("last_id", sa.Integer),
    sa.Column("last_hash", sa.String(64), nullable=False),
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

# The notification outbox: one row per new alert, written in the transaction that stores the alert, so an alert
# stored is an alert that will be notified. A delivery worker (the pipeline's notify step, `nightwatch notify run`)
# notifies each pending row (once: the `deliveries` claim) and sets `done_at`.
notify_outbox = sa.Table(
    "notify_outbox",
    metadata,
    sa.Column("alert_id", sa.String(300), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True), index=True),
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

# Incidents (ops/incidents/): opened by the health watcher at SEV-1/SEV-2, acknowledged, worked through their
# procedure's checklist and resolved. `active` is "active" while unresolved and NULL after: its unique index keeps
# one incident open at a time even with two watchers. The pages of the ladder are `escalations` rows keyed
# "incident:<id>", the notices `deliveries` rows with the same key.
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("incident_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("severity", sa.String(8), nullable=False),  # the worst level reached: SEV-1 .. SEV-4
    sa.Column("opened_severity", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # open | acknowledged | resolved
    sa.Column("active", sa.String(8), unique=True),  # "active" until resolved, then NULL
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),  # health's finding when it opened (and when it worsened)
    sa.Column("procedure", sa.String(128)),  # the runbook the checklist comes from
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("last_bad_at", sa.DateTime(timezone=True), nullable=False),  # health last at an opening level
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.String(160)),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("resolved_by", sa.String(160)),
    sa.Column("review", sa.Text),  # the post-incident review (JSON: summary, root cause, follow-ups)
    sa.Column("reviewed_by", sa.String(160)),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
)

incident_timeline = sa.Table(
    "incident_timeline",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.incident_id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    # opened | worsened | paged | escalated | acknowledged | note | tick | untick | resolved | review
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),  # a user, or "system:watcher"
    sa.Column("text", sa.Text, nullable=False),
)

incident_checklist = sa.Table(
    "incident_checklist",
    metadata,
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.incident_id"), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),  # 1-based, as the guide numbers them
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True)),
    sa.Column("done_by", sa.String(160)),
)

# The public status page's updates (ops/statuspage.py): what a visitor reads, written on purpose (a handoff, a
# published incident note) or by the incident's own steps (investigating, identified, resolved). No author is shown.
status_updates = sa.Table(
    "status_updates",
    metadata,
    sa.Column("update_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # incident | handoff | notice
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.incident_id"), index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author", sa.String(160), nullable=False),  # audited; never shown on the page
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
