"""What the engine's parts share while they run one campaign.

One object, made once the plan is known, handed to each part (admission, submission,
completion, controls): the parts read and change these collections, but a task's state
changes only through the engine's `move`. Everything here lives in memory only; what must
survive a crash goes through the recorder.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from distributed import Client

from orchestrator.engine.batch import BatchSteps
from orchestrator.engine.config import EngineConfig
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.plan import Plan
from orchestrator.engine.recorder import Recorder
from orchestrator.engine.slots import Counts, Slot
from orchestrator.results import ResultsLocation
from orchestrator.store import Store

Upstream = dict[str, Any]
"""What a queued task is given of its upstream tasks: futures or outcomes, by step name."""


class Move(Protocol):
    """The engine's one state transition (`Engine._move`), as the parts call it."""

    def __call__(
        self,
        slot: Slot,
        new: str,
        *,
        outcome: Outcome | None = None,
        error: str | None = None,
        worker: str | None = None,
        attempt_note: bool = False,
        quiet: bool = False,
    ) -> None: ...


class RunState:
    def __init__(
        self,
        *,
        store: Store,
        client: Client,
        campaign_id: str,
        config: EngineConfig,
        location: ResultsLocation,
        plan: Plan,
        counts: Counts,
        recorder: Recorder,
        batch: BatchSteps | None,
    ):
        self.store = store
        self.client = client
        self.campaign_id = campaign_id
        self.config = config
        self.location = location
        self.plan = plan
        self.counts = counts
        self.recorder = recorder
        self.batch = batch
        # the window: points admitted and not yet finished, by point, then by step
        self.active: dict[int, dict[str, Slot]] = {}
        self.parked: set[int] = set()  # admitted, but waiting on a single step: off the window
        self.readmit: deque[int] = deque()  # parked points free to go on, in order
        self.next_point = 0  # the first point never admitted
        self.singles: dict[str, Slot] = {}
        # the results of foreach steps that a single step gathers, by point
        self.gather_refs: dict[str, list[Any]] = {
            name: [None] * plan.points
            for name in plan.foreach_steps
            if plan.gathered_by_someone(name)
        }
        self.inflight: dict[Any, Slot] = {}  # Dask key → slot, in submission order
        self.retries: list[tuple[float, int, Slot]] = []  # a heap: (due, sequence, slot)
        self.to_submit: dict[str, list[tuple[Slot, Upstream]]] = {}
        self.cancelling = False  # the whole campaign is being cancelled
        self.cancelled_steps: set[str] = set()
        self.cancelled_points: set[int] = set()
        self.cancelled_tasks: set[tuple[str, int]] = set()

    def is_cancelled(self, step: str, point: int) -> bool:
        """A cancel control covers this task (its step, its point, or itself)."""
        return (
            step in self.cancelled_steps
            or point in self.cancelled_points
            or (step, point) in self.cancelled_tasks
        )
