"""Campaigns, tasks, events and controls.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("results_url", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("runner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("last_event_seq", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("import_paths", sa.JSON, nullable=True),
        sa.UniqueConstraint("project", "idempotency_key", name="uq_campaigns_idempotency"),
    )
    op.create_index("ix_campaigns_project_created", "campaigns", ["project", "created_at"])
    op.create_index("ix_campaigns_state", "campaigns", ["state"])
    op.create_table(
        "tasks",
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.String(100), primary_key=True),
        sa.Column("point", sa.BigInteger, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("result_url", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("queued_at", sa.Float, nullable=True),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_tasks_campaign_state", "tasks", ["campaign_id", "step", "state"])
    op.create_table(
        "events",
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step", sa.String(100), nullable=True),
        sa.Column("point", sa.BigInteger, nullable=True),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_table(
        "controls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("step", sa.String(100), nullable=True),
        sa.Column("point", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("active", sa.Integer, nullable=False),
    )
    op.create_index("ix_controls_campaign", "controls", ["campaign_id", "id"])


def downgrade() -> None:
    op.drop_table("controls")
    op.drop_table("events")
    op.drop_table("tasks")
    op.drop_table("campaigns")
