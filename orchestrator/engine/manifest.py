"""The campaign's manifest, and progress reports: written only for what is committed.

The recorder calls `durable` on its own thread once a batch of task writes is committed to
the store: only then does a finished task get its manifest line and does the progress
callback see the new counts. So a reader of the manifest or of the progress never learns
of a task the store could still lose. A manifest that cannot be appended to does not stop
the run: the store stays the record of what ran, and the manifest is rebuilt from it when a
run starts (`rebuild`): lines lost with a crash, or given up after their deadline on an
object store, are written again, so a finished campaign's manifest lists every finished
task (with the output files registered with it). At the end of a run, `complete` writes
again what was lost during it; a manifest still incomplete then fails the campaign with
the reason (`orchestrator restart` writes it again), rather than calling it succeeded.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from orchestrator.engine.outcome import first_of, last_line
from orchestrator.engine.plan import Plan
from orchestrator.engine.slots import public_point
from orchestrator.results import ResultsLocation
from orchestrator.states import TASK_TERMINAL
from orchestrator.store import SINGLE, Store, TaskRecord, TaskWrite

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
        self.lost: list[str] = []  # why lines could not be appended during this run

    def durable(self, writes: list[TaskWrite], snapshot: Any) -> None:
        """Runs on the recorder's thread once `writes` are committed."""
        entries = [self.entry(w) for w in writes if w.state in TASK_TERMINAL]
        if entries:
            try:
                self.location.append_manifest(entries)
            except Exception as exc:
                logger.exception("could not append to the manifest")
                self.lost.append(f"{len(entries)} line(s) not written: {exc}")
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

    def rebuild(
        self, store: Store, campaign_id: str, page: int = 10_000, strict: bool = False
    ) -> int:
        """Append a line for every finished task whose last line in the manifest is not its
        stored attempt and state; returns how many (0 when the manifest cannot be read, or
        with `strict` the error).

        Memory stays small at any size: the manifest is read line by line into `Listed` (4
        bytes per point and step), the store's finished rows a page at a time, and only the
        output files of the missing lines are kept."""
        if not any(
            n
            for by_state in store.task_counts(campaign_id).values()
            for state, n in by_state.items()
            if state in TASK_TERMINAL
        ):
            return 0
        listed = Listed(self.plan.points)
        try:
            for e in self.location.iter_manifest():
                listed.add(e.get("step"), e.get("point"), e.get("attempt"), e.get("state"))
        except Exception as exc:
            if strict:
                raise
            logger.warning("could not read the manifest to rebuild it: %s", exc)
            return 0
        outputs: dict[tuple[str, int | None, int], Any] | None = None
        written = 0
        for state, after, keys in _finished_keys(store, campaign_id, page):
            if all(listed.has_attempt(s, _public(p), a, st) for s, p, a, st in keys):
                continue
            rows = store.list_tasks(campaign_id, state=state, limit=page, after=after)
            missing = [row for row in rows if not listed.has(row)]
            if outputs is None:  # once, keeping only what the manifest lacks
                outputs = store.task_outputs(
                    campaign_id, lambda key, state: not listed.has_attempt(*key, state)
                )
            for row in missing:
                key = (row.step, SINGLE if row.point is None else row.point, row.attempt)
                self.outputs[key] = outputs.get((row.step, row.point, row.attempt), [])
            self.location.append_manifest([self.entry(_as_write(row)) for row in missing])
            written += len(missing)
        if written:
            logger.warning("manifest: %d line(s) missing, written again from the store", written)
        return written

    def flush(self) -> None:
        """Make every line appended so far readable where the results are."""
        self.location.flush_manifest(self.upload_deadline)

    def complete(self, store: Store, campaign_id: str) -> str | None:
        """At the end of a run, once every task write is committed: None when every line
        is stored where the results are; otherwise lines lost during the run are written
        again from the store (once), and what still fails is returned."""
        problem = self._problem()
        if problem is None:
            return None
        try:
            written = self.rebuild(store, campaign_id, strict=True)
        except Exception as exc:
            return f"{problem}; writing it again failed: {last_line(str(exc))}"
        if (again := self._problem()) is not None:
            return again
        logger.warning("manifest: %d line(s) lost during the run written again", written)
        return None

    def _problem(self) -> str | None:
        if not self.location.flush_manifest(self.upload_deadline):
            return f"manifest lines still not stored after {self.upload_deadline:.0f} s"
        lost = self.lost + self.location.manifest_given_up()
        self.lost = []
        if not lost:
            return None
        return first_of([last_line(message) for message in lost])


class Listed:
    """The last (attempt, state) the manifest lists for each task, packed: one 32-bit code
    per point of each foreach step (a dict only for single steps and stray points)."""

    _STATES = ("", *sorted(TASK_TERMINAL))

    def __init__(self, points: int):
        self.points = points
        self._steps: dict[str, array[int]] = {}
        self._other: dict[tuple[str, int | None], int] = {}

    def _code(self, attempt: Any, state: Any) -> int:
        if state not in self._STATES or not isinstance(attempt, int) or not 0 <= attempt < 2**27:
            return -1  # a line this code would not write: never matches
        return attempt * 8 + self._STATES.index(state)

    def add(self, step: Any, point: Any, attempt: Any, state: Any) -> None:
        code = self._code(attempt, state)
        if isinstance(step, str) and isinstance(point, int) and 0 <= point < self.points:
            codes = self._steps.get(step)
            if codes is None:
                codes = self._steps[step] = array("i", bytes(4 * self.points))
            codes[point] = code
        elif isinstance(step, str):
            self._other[(step, point if isinstance(point, int) else None)] = code

    def has_attempt(self, step: str, point: int | None, attempt: int, state: str) -> bool:
        code = self._code(attempt, state)
        if point is not None and 0 <= point < self.points:
            codes = self._steps.get(step)
            return codes is not None and codes[point] == code
        return self._other.get((step, point)) == code

    def has(self, row: TaskRecord) -> bool:
        return self.has_attempt(row.step, row.point, row.attempt, row.state)


def _finished_keys(
    store: Store, campaign_id: str, page: int
) -> Iterator[tuple[str, tuple[str, int] | None, list[tuple[str, int, int, str]]]]:
    """The finished tasks' (step, point, attempt, state), a page at a time, with the state
    and cursor that read the page (to read its whole rows again)."""
    for state in sorted(TASK_TERMINAL):
        after: tuple[str, int] | None = None
        while True:
            keys = store.task_keys(campaign_id, state=state, limit=page, after=after)
            if keys:
                yield state, after, keys
            if len(keys) < page:
                break
            after = keys[-1][0], keys[-1][1]


def _public(point: int) -> int | None:
    return None if point == SINGLE else point


def _as_write(row: TaskRecord) -> TaskWrite:
    return TaskWrite(
        step=row.step,
        point=SINGLE if row.point is None else row.point,
        state=row.state,
        attempt=row.attempt,
        result=row.result,
        result_url=row.result_url,
        error=row.error,
        finished_at=row.finished_at,
    )
