"""In-memory bookkeeping of the tasks the engine is working on."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from orchestrator.engine.outcome import Outcome
from orchestrator.states import TASK_TERMINAL, TaskState
from orchestrator.store import SINGLE

# In-memory states beyond the stored ones: `held` (an upstream failed: never run; stored as
# pending, so a restart runs it) and `waiting` (a retry's backoff; stored as queued).
HELD = "held"
RESOLVED = frozenset({*TASK_TERMINAL, HELD})


@dataclass(slots=True)
class Slot:
    step: str
    point: int  # -1 for a step without foreach
    state: str = TaskState.PENDING  # a TaskState, or HELD
    attempt: int = 0
    failures: int = 0
    waiting: bool = False  # in a retry's backoff (stored as queued)
    to_submit: bool = False  # queued in `RunState.to_submit`, not submitted yet
    future: Any = None  # a Dask future, a SLURM job id (batch), or the Chunk it runs in
    outcome: Outcome | None = None
    queued_at: float | None = None
    started_at: float | None = None
    job_ref: str | None = None  # a batch task's SLURM job (see engine/batch.py)
    reattach: bool = False  # a batch task in flight when the last runner stopped
    isolated: bool = False  # its last chunk was lost: its next attempt is a chunk of one

    @property
    def resolved(self) -> bool:
        return self.state in RESOLVED

    @property
    def ref(self) -> Any:
        """What a downstream task receives: the live future if any, else the outcome."""
        return self.future if self.future is not None else self.outcome


@dataclass(eq=False)
class Chunk:
    """Points of one step run by one Dask task (the step's `chunk` setting). Each point keeps
    its own slot; `slot.future` is the chunk while the point is in it and unfinished."""

    key: str
    token: str
    step: str
    slots: list[Slot]
    future: Any = None

    def pending(self) -> list[Slot]:
        """The chunk's points the engine has no outcome of yet."""
        return [slot for slot in self.slots if slot.future is self]


class Counts:
    """Task counts by step and state, kept in step with every transition."""

    def __init__(self, totals: dict[str, int], stored: dict[str, dict[str, int]]):
        self.totals = totals
        self.by_step: dict[str, defaultdict[str, int]] = {}
        for step, total in totals.items():
            counts: defaultdict[str, int] = defaultdict(int, stored.get(step, {}))
            counts[TaskState.PENDING] += total - sum(stored.get(step, {}).values())
            self.by_step[step] = counts

    def move(self, step: str, old: str, new: str) -> None:
        counts = self.by_step[step]
        counts[old] -= 1
        counts[new] += 1

    def grow(self, step: str, added: int) -> None:
        """The step has `added` more tasks (points were added to the campaign)."""
        self.totals[step] += added
        self.by_step[step][TaskState.PENDING] += added

    def get(self, step: str, state: str) -> int:
        return self.by_step[step].get(state, 0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {
            step: {"total": self.totals[step], **{k: v for k, v in c.items() if v}}
            for step, c in self.by_step.items()
        }


def public_point(point: int) -> int | None:
    """A task's point as the store's readers see it: None for a step without foreach."""
    return None if point == SINGLE else point
