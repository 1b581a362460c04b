"""An index for the dashboard's "finished in the last minute" count of a campaign's tasks.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_campaign_finished", "tasks", ["campaign_id", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_campaign_finished", table_name="tasks")
