"""Task and campaign states, with their terminal sets (DESIGN.md's glossary)."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TASK_TERMINAL


TASK_TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})
TASK_ACTIVE = frozenset({TaskState.QUEUED, TaskState.RUNNING})


class CampaignState(StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in CAMPAIGN_TERMINAL


CAMPAIGN_TERMINAL = frozenset(
    {CampaignState.SUCCEEDED, CampaignState.FAILED, CampaignState.CANCELLED}
)
