"""The durable state store (SQLAlchemy 2; SQLite by default, PostgreSQL by URL).

`Store` (store.py) is the façade callers use; the modules behind it, one per table
group, are private. `isolation` makes each project's database role (PostgreSQL): what an
instance of one project connects as.
"""

from orchestrator.store._campaigns import new_campaign_id
from orchestrator.store._lease import runner_alive, runner_identity
from orchestrator.store._tasks import SINGLE
from orchestrator.store.isolation import grant_project, project_database_url, revoke_project
from orchestrator.store.records import (
    CampaignRecord,
    Control,
    EventRecord,
    EventWrite,
    OutboxItem,
    TaskRecord,
    TaskWrite,
    WriteBatch,
)
from orchestrator.store.store import Store

__all__ = [
    "SINGLE",
    "CampaignRecord",
    "Control",
    "EventRecord",
    "EventWrite",
    "OutboxItem",
    "Store",
    "TaskRecord",
    "TaskWrite",
    "WriteBatch",
    "grant_project",
    "new_campaign_id",
    "project_database_url",
    "revoke_project",
    "runner_alive",
    "runner_identity",
]
