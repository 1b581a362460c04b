"""The campaign's manifest, and progress reports: written only for what is committed.

The recorder calls `durable` on its own thread once a batch of task writes is committed to
the store: only then does a finished task get its manifest line and does the progress
callback see the new counts. So a reader of the manifest or of the progress never learns
of a task the store could still lose. A manifest that cannot be appended to is logged, not
fatal: the store stays the record of what ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from orchestrator.engine.outcome import last_line
from orchestrator.engine.plan import Plan
from orchestrator.engine.slots import public_point
from orchestrator.results import ResultsLocation
from orchestrator.states import TASK_TERMINAL
from orchestrator.store import TaskWrite

logger = logging.getLogger(__name__)

Progress = Callable[[dict[str, dict[str, int]]], None]


class Manifest:
    def __init__(
        self,
        location: ResultsLocation,
        plan: Plan,
        progress: Progress | None,
        upload_deadline: float,
    ):
        self.location = location
        self.plan = plan
        self.progress = progress
        self.upload_deadline = upload_deadline
        # a finished task's output files, until its manifest line is written
        self.outputs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}

    def durable(self, writes: list[TaskWrite], snapshot: Any) -> None:
        """Runs on the recorder's thread once `writes` are committed."""
        entries = [self.entry(w) for w in writes if w.state in TASK_TERMINAL]
        if entries:
            try:
                self.location.append_manifest(entries)
            except Exception:
                logger.exception("could not append to the manifest")
        if self.progress is not None and snapshot is not None:
            self.progress(snapshot)

    def entry(self, write: TaskWrite) -> dict[str, Any]:
        point = public_point(write.point)
        entry: dict[str, Any] = {"step": write.step, "point": point}
        if point is not None:
            entry["parameters"] = self.plan.sweep.point(point)
        entry.update(
            state=write.state,
            attempt=write.attempt,
            result=write.result,
            result_url=write.result_url,
            output=self.location.url(self.location.task_prefix(write.step, point)),
            outputs=self.outputs.pop((write.step, write.point, write.attempt), []),
            finished_at=write.finished_at,
        )
        if write.error:
            entry["error"] = last_line(write.error)
        return entry

    def flush(self) -> None:
        """Make every line appended so far readable where the results are."""
        self.location.flush_manifest(self.upload_deadline)
