"""A campaign's live throttle (`orchestrator throttle`), kept with it so a resumed campaign
keeps it: `{"window": N, "steps": {"step": N}}`, NULL when never throttled.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("throttle", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("throttle")
