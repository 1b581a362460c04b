"""Plain records the store hands out (no SQLAlchemy objects leave the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CampaignRecord:
    id: str
    project: str
    name: str
    owner: str | None
    state: str
    spec: dict[str, Any]
    points: int
    results_url: str
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    runner: str | None
    lease_until: float | None
    message: str | None
    import_paths: list[str] | None = None
    throttle: dict[str, Any] | None = None  # {"window": N, "steps": {name: N}}, if throttled


@dataclass(frozen=True)
class TaskRecord:
    step: str
    point: int | None
    state: str
    attempt: int
    result: Any = None
    result_url: str | None = None
    error: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    job_id: str | None = None


@dataclass(frozen=True)
class EventRecord:
    seq: int
    time: float
    kind: str
    step: str | None = None
    point: int | None = None
    state: str | None = None
    attempt: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Control:
    id: int
    action: str
    step: str | None
    point: int | None


@dataclass
class TaskWrite:
    """A task row to insert or update (all columns; the engine owns its tasks' rows)."""

    step: str
    point: int  # -1 for a step without foreach
    state: str
    attempt: int
    result: Any = None
    result_url: str | None = None
    error: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    job_id: str | None = None


@dataclass
class EventWrite:
    time: float
    kind: str
    step: str | None = None
    point: int | None = None
    state: str | None = None
    attempt: int | None = None
    message: str | None = None


@dataclass
class WriteBatch:
    """Everything one flush writes for one campaign, in one transaction."""

    campaign_id: str
    tasks: dict[tuple[str, int], TaskWrite] = field(default_factory=dict)
    events: list[EventWrite] = field(default_factory=list)
    campaign_state: str | None = None
    campaign_message: str | None = None
    # knowledge-graph registrations: (kind, payload), committed with the rest
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # the runner writing it: the batch is fenced on that runner's lease (None: not fenced)
    runner: str | None = None

    def __bool__(self) -> bool:
        return bool(self.tasks or self.events or self.campaign_state or self.outbox)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    campaign_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
