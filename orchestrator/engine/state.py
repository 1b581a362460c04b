"""What the engine's parts share while they run one campaign.

One object, made once the plan is known, handed to each part (admission, submission,
completion, controls): the parts read and change these collections, but a task's state
changes only through the engine's `move`. Everything here lives in memory only; what must
survive a crash goes through the recorder.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distributed import Client

from orchestrator.engine.batch import BatchSteps
from orchestrator.engine.config import EngineConfig
from orchestrator.engine.plan import Plan
from orchestrator.engine.recorder import Recorder
from orchestrator.engine.slots import Chunk, Counts, Slot, public_point
from orchestrator.results import ResultsLocation
from orchestrator.store import EventWrite, Store

Upstream = dict[str, Any]
"""What a queued task is given of its upstream tasks: futures or outcomes, by step name."""


Move = Callable[..., None]
"""The engine's one state transition, `Engine._move(slot, new, *, outcome, error, worker,
quiet)`, as the parts call it."""


@dataclass
class RunState:
    store: Store
    client: Client
    campaign_id: str
    config: EngineConfig
    location: ResultsLocation
    plan: Plan
    counts: Counts
    recorder: Recorder
    batch: BatchSteps | None
    # the window: points admitted and not yet finished, by point, then by step
    active: dict[int, dict[str, Slot]] = field(default_factory=dict)
    parked: set[int] = field(default_factory=set)  # waiting on a single step: off the window
    readmit: deque[int] = field(default_factory=deque)  # parked points free to go on, in order
    next_point: int = 0  # the first point never admitted
    singles: dict[str, Slot] = field(default_factory=dict)
    # the results of foreach steps that a single step gathers, by point (see __post_init__)
    gather_refs: dict[str, list[Any]] = field(default_factory=dict)
    # Dask key → slot (or chunk of slots, engine/chunks.py), in order
    inflight: dict[Any, Slot | Chunk] = field(default_factory=dict)
    retries: list[tuple[float, int, Slot]] = field(default_factory=list)  # (due, seq, slot)
    to_submit: dict[str, list[tuple[Slot, Upstream]]] = field(default_factory=dict)
    cancelling: bool = False  # the whole campaign is being cancelled
    workers_failed: str | None = None  # why the workers cannot start: the run ends failed
    cancelled_steps: set[str] = field(default_factory=set)
    cancelled_points: set[int] = field(default_factory=set)
    cancelled_tasks: set[tuple[str, int]] = field(default_factory=set)
    throttle_window: int | None = None  # a live throttle of the window (engine/throttle.py)

    def __post_init__(self) -> None:
        plan = self.plan
        self.gather_refs = {
            name: [None] * plan.points
            for name in plan.foreach_steps
            if plan.gathered_by_someone(name)
        }

    @property
    def window(self) -> int:
        """Points in flight at most: engine.max_in_flight, or a live throttle below it."""
        ceiling = self.config.max_in_flight
        return min(ceiling, self.throttle_window) if self.throttle_window else ceiling

    def release_parked(self) -> None:
        """A single step is resolved: parked points re-enter the window as it has room."""
        queued = set(self.readmit)
        self.readmit.extend(p for p in sorted(self.parked) if p not in queued)

    def is_cancelled(self, step: str, point: int) -> bool:
        """A cancel control covers this task (its step, its point, or itself)."""
        return (
            step in self.cancelled_steps
            or point in self.cancelled_points
            or (step, point) in self.cancelled_tasks
        )


def task_event(slot: Slot, state: str, message: str | None, at: float | None = None) -> EventWrite:
    """An event of the task in `slot` (at `at`, or now)."""
    return EventWrite(
        time.time() if at is None else at,
        "task",
        slot.step,
        public_point(slot.point),
        state,
        slot.attempt,
        message,
    )
