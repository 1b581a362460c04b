"""The durable state store (SQLAlchemy 2; SQLite by default, PostgreSQL by URL)."""

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
from orchestrator.store.store import SINGLE, Store, runner_alive, runner_identity

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
    "runner_alive",
    "runner_identity",
]
