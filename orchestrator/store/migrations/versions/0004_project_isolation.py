"""Each project's instance sees only its project's rows (PostgreSQL row-level security).

`project_roles` maps a database role to the one project it serves. On PostgreSQL every
table that holds a project's data gets a policy: a row is visible and writable only to the
role mapped to its project (tables without a project column reach it through their
campaign). The tables' owner (the front door's role, which runs the migrations) is not
subject to these policies; any other role without a mapping sees nothing. No row is changed.
On SQLite only the (unused) mapping table is created.

The SQL is written out here, not imported, so that this revision stays what it was.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# the project of the connected role (NULL for a role without a mapping: nothing matches)
OWN_PROJECT = (
    "(SELECT r.project FROM project_roles r WHERE r.role_name = CAST(current_user AS text))"
)
OWN_CAMPAIGNS = f"(SELECT c.id FROM campaigns c WHERE c.project = {OWN_PROJECT})"
POLICIES = {
    "project_roles": "role_name = CAST(current_user AS text)",
    "campaigns": f"project = {OWN_PROJECT}",
    "tasks": f"campaign_id IN {OWN_CAMPAIGNS}",
    "events": f"campaign_id IN {OWN_CAMPAIGNS}",
    "controls": f"campaign_id IN {OWN_CAMPAIGNS}",
    "outbox": f"campaign_id IN {OWN_CAMPAIGNS}",
}
POLICY = "own_project"


def upgrade() -> None:
    op.create_table(
        "project_roles",
        sa.Column("role_name", sa.String(63), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False, unique=True),
        sa.Column("granted_at", sa.Float, nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, condition in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON {table} FOR ALL"
            f" USING ({condition}) WITH CHECK ({condition})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in POLICIES:
            op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.drop_table("project_roles")
