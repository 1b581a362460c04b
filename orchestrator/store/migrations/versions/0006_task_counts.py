"""A campaign of a million tasks stays cheap to read.

- `task_counts`: how many task rows each (campaign, step, state) has, kept by triggers on
  `tasks` in the transaction that changes them (every writer: the runner's batches, restart,
  reopen, cancel, delete), so the status reads a few rows instead of grouping every task.
  PostgreSQL: statement-level triggers over the transition tables (one grouped upsert per
  statement, rows in a fixed order so two writers never deadlock); SQLite: row triggers.
  The table gets the same row-level security policy as `tasks` (migration 0004).
- tasks: `(campaign_id, state, step, point)` replaces `(campaign_id, step, state)` (a page of
  tasks filtered by state is an index range in cursor order, and `restart` finds its failed
  and cancelled tasks there); `(campaign_id, state, finished_at)` replaces
  `(campaign_id, finished_at)` (the dashboard's rate and its latest failures).
- outbox: the registrations still to send are a partial index in sending order
  (`next_at, id` where `done_at IS NULL`), so a backlog of a million is read a batch at a
  time; `(campaign_id, id)` finds a campaign's registrations (manifest rebuild, delete).

The SQL is written out here, not imported, so that this revision stays what it was.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OWN_PROJECT = (
    "(SELECT r.project FROM project_roles r WHERE r.role_name = CAST(current_user AS text))"
)
OWN_CAMPAIGNS = f"(SELECT c.id FROM campaigns c WHERE c.project = {OWN_PROJECT})"
POLICY = "own_project"

# PostgreSQL: one grouped change per statement; a delete only lowers counts that exist (a
# campaign deleted with its tasks by cascade must not get a count row back)
PG_FUNCTIONS = {
    "task_counts_added": """
        INSERT INTO task_counts (campaign_id, step, state, n)
        SELECT campaign_id, step, state, count(*) FROM new_rows
        GROUP BY campaign_id, step, state ORDER BY campaign_id, step, state
        ON CONFLICT (campaign_id, step, state) DO UPDATE SET n = task_counts.n + EXCLUDED.n""",
    "task_counts_changed": """
        INSERT INTO task_counts (campaign_id, step, state, n)
        SELECT campaign_id, step, state, sum(d) FROM (
            SELECT campaign_id, step, state, -1 AS d FROM old_rows
            UNION ALL SELECT campaign_id, step, state, 1 AS d FROM new_rows) AS moved
        GROUP BY campaign_id, step, state HAVING sum(d) <> 0
        ORDER BY campaign_id, step, state
        ON CONFLICT (campaign_id, step, state) DO UPDATE SET n = task_counts.n + EXCLUDED.n""",
    "task_counts_removed": """
        UPDATE task_counts SET n = task_counts.n - gone.n
        FROM (SELECT campaign_id, step, state, count(*) AS n FROM old_rows
              GROUP BY campaign_id, step, state) AS gone
        WHERE task_counts.campaign_id = gone.campaign_id AND task_counts.step = gone.step
          AND task_counts.state = gone.state""",
}
PG_TRIGGERS = {
    "task_counts_added": "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows",
    "task_counts_changed": (
        "AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "task_counts_removed": "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows",
}

_SQLITE_ADD = """
    INSERT INTO task_counts (campaign_id, step, state, n)
    VALUES (NEW.campaign_id, NEW.step, NEW.state, 1)
    ON CONFLICT (campaign_id, step, state) DO UPDATE SET n = n + 1;"""
_SQLITE_REMOVE = """
    UPDATE task_counts SET n = n - 1
    WHERE campaign_id = OLD.campaign_id AND step = OLD.step AND state = OLD.state;"""
SQLITE_TRIGGERS = {
    "task_counts_added": f"AFTER INSERT ON tasks BEGIN {_SQLITE_ADD} END",
    "task_counts_changed": (
        "AFTER UPDATE OF state ON tasks WHEN OLD.state IS NOT NEW.state"
        f" BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END"
    ),
    "task_counts_removed": f"AFTER DELETE ON tasks BEGIN {_SQLITE_REMOVE} END",
}


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO task_counts (campaign_id, step, state, n)"
        " SELECT campaign_id, step, state, count(*) FROM tasks GROUP BY campaign_id, step, state"
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN {body}; RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} {PG_TRIGGERS[name]}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        condition = f"campaign_id IN {OWN_CAMPAIGNS}"
        op.execute("ALTER TABLE task_counts ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON task_counts FOR ALL"
            f" USING ({condition}) WITH CHECK ({condition})"
        )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")

    op.drop_index("ix_tasks_campaign_state", table_name="tasks")
    op.create_index(
        "ix_tasks_campaign_state_point", "tasks", ["campaign_id", "state", "step", "point"]
    )
    op.drop_index("ix_tasks_campaign_finished", table_name="tasks")
    op.create_index(
        "ix_tasks_campaign_state_finished", "tasks", ["campaign_id", "state", "finished_at"]
    )
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["next_at", "id"],
        postgresql_where=sa.text("done_at IS NULL"),
        sqlite_where=sa.text("done_at IS NULL"),
    )
    op.create_index("ix_outbox_campaign", "outbox", ["campaign_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_campaign", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["done_at", "next_at"])
    op.drop_index("ix_tasks_campaign_state_finished", table_name="tasks")
    op.create_index("ix_tasks_campaign_finished", "tasks", ["campaign_id", "finished_at"])
    op.drop_index("ix_tasks_campaign_state_point", table_name="tasks")
    op.create_index("ix_tasks_campaign_state", "tasks", ["campaign_id", "step", "state"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in PG_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON tasks" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("task_counts")
