"""The state store's schema. Changes go through an alembic revision in migrations/."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# One submitted spec. `points` is the sweep's size; task rows are created lazily.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("name", String(100), nullable=False),
    Column("owner", String(200), nullable=True),
    Column("state", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("results_url", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("runner", String(200), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_event_seq", BigInteger, nullable=False, default=0),
    Column("message", Text, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    # where it was submitted from: folders that make the spec's callables importable
    Column("import_paths", JSON, nullable=True),
    # a live throttle, kept across resume: {"window": N, "steps": {name: N}} (see throttle.py)
    Column("throttle", JSON, nullable=True),
    UniqueConstraint("project", "idempotency_key", name="uq_campaigns_idempotency"),
    Index("ix_campaigns_project_created", "project", "created_at"),
    Index("ix_campaigns_state", "state"),
)

# One row per task that has been queued at least once. point = -1 for a step without foreach.
tasks = Table(
    "tasks",
    metadata,
    Column(
        "campaign_id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("step", String(100), primary_key=True),
    Column("point", BigInteger, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("result", JSON, nullable=True),
    Column("result_url", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("queued_at", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("job_id", String(64), nullable=True),
    # a page filtered by state, in cursor order; restart's failed and cancelled tasks
    Index("ix_tasks_campaign_state_point", "campaign_id", "state", "step", "point"),
    # the dashboard's rate and latest failures
    Index("ix_tasks_campaign_state_finished", "campaign_id", "state", "finished_at"),
)

# How many task rows each (campaign, step, state) has: kept by triggers on `tasks` in the
# transaction that changes them (migration 0006), so the status never groups every task row.
task_counts = Table(
    "task_counts",
    metadata,
    Column(
        "campaign_id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("step", String(100), primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Append-only history; seq is per campaign, allocated from campaigns.last_event_seq.
events = Table(
    "events",
    metadata,
    Column(
        "campaign_id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("seq", BigInteger, primary_key=True),
    Column("time", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("step", String(100), nullable=True),
    Column("point", BigInteger, nullable=True),
    Column("state", String(16), nullable=True),
    Column("attempt", Integer, nullable=True),
    Column("message", Text, nullable=True),
)

# Requests from other processes (CLI, API) to the campaign's runner, e.g. cancel a step.
controls = Table(
    "controls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "campaign_id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
    ),
    Column("action", String(16), nullable=False),
    Column("step", String(100), nullable=True),
    Column("point", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("active", Integer, nullable=False, default=1),
    Index("ix_controls_campaign", "campaign_id", "id"),
)

# Registrations waiting for the knowledge graph, written in the same transaction as the
# state change they describe (a transactional outbox): done_at is set once registered.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "campaign_id", String(32), ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("done_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    # what is still to send, in sending order (a partial index: sent rows leave it)
    Index(
        "ix_outbox_pending",
        "next_at",
        "id",
        postgresql_where=text("done_at IS NULL"),
        sqlite_where=text("done_at IS NULL"),
    ),
    Index("ix_outbox_campaign", "campaign_id", "id"),
)

# Which database role is a project's instance (PostgreSQL: row-level security lets that role
# see and write only its project's rows; see store/isolation.py). Unused on SQLite.
project_roles = Table(
    "project_roles",
    metadata,
    Column("role_name", String(63), primary_key=True),
    Column("project", String(200), nullable=False, unique=True),
    Column("granted_at", Float, nullable=False),
)
