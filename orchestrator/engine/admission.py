"""Admission: which points are in the window, and which of their tasks are queued.

Guarantees:
- at most `max_in_flight` points (fewer when throttled) are in the window (admitted, not
  finished, not parked), so a sweep of any size is held in memory a window at a time;
- a point enters the window with the state its tasks have in the store (read a chunk of
  points at a time): a finished task is never queued again, and a batch task whose job a
  previous runner submitted is re-attached to that job rather than submitted twice;
- a task is queued once per attempt: a queued task waiting to be submitted (a last,
  partial chunk waits for more points) is not queued again when its point advances;
- a task is queued only when every upstream task it needs succeeded; a task whose upstream
  failed is held (stored as pending, so `restart` runs it), and one whose upstream was
  cancelled is cancelled;
- a point waiting only on a single step is parked off the window, and re-enters it, in
  order, once that single step is resolved.
"""

from __future__ import annotations

import time
from enum import StrEnum

from orchestrator.engine.chunks import leave_chunk
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.slots import HELD, Chunk, Slot
from orchestrator.engine.state import Move, RunState, Upstream, task_event
from orchestrator.states import TASK_ACTIVE, TaskState
from orchestrator.store import SINGLE, TaskRecord


class Verdict(StrEnum):
    """What a task's upstream tasks allow it."""

    READY = "ready"
    WAIT = "wait"
    HELD = "held"
    CANCELLED = "cancelled"


_OPEN = frozenset({TaskState.PENDING, *TASK_ACTIVE})  # states a task can still leave by running


class Admission:
    def __init__(self, state: RunState, move: Move):
        self.state = state
        self.move = move
        self.max_stored_point = state.store.max_point(state.campaign_id)
        # the stored rows of one chunk of points, read ahead of their admission
        self._rows: dict[tuple[str, int], TaskRecord] = {}
        self._rows_until = 0

    def load_singles(self) -> None:
        """The single steps' slots, as the store has them."""
        state = self.state
        state.singles = {name: Slot(name, SINGLE) for name in state.plan.single_steps}
        for row in state.store.single_tasks(state.campaign_id):
            if row.step in state.singles:
                state.singles[row.step] = self.slot_from_row(row.step, SINGLE, row)

    def admit(self) -> None:
        state = self.state
        window = state.window
        while state.readmit and len(state.active) - len(state.parked) < window:
            point = state.readmit.popleft()
            state.parked.discard(point)
            if point in state.active:
                self.advance_point(point)
        foreach = state.plan.foreach_steps
        while (
            foreach
            and state.next_point < state.plan.points
            and len(state.active) - len(state.parked) < window
        ):
            point = state.next_point
            state.next_point += 1
            slots = {step: self._initial_slot(step, point) for step in foreach}
            state.active[point] = slots
            self.advance_point(point)
        if not foreach:
            state.next_point = state.plan.points

    def _initial_slot(self, step: str, point: int) -> Slot:
        row = self._stored_row(step, point)
        slot = self.slot_from_row(step, point, row) if row else Slot(step, point)
        if not slot.resolved and self.state.is_cancelled(step, point):
            self.cancel(slot)
        return slot

    def _stored_row(self, step: str, point: int) -> TaskRecord | None:
        if point > self.max_stored_point:
            return None
        if point >= self._rows_until:
            start, stop = point, point + self.state.config.chunk
            self._rows = {
                (r.step, r.point): r
                for r in self.state.store.tasks_in_range(self.state.campaign_id, start, stop)
                if r.point is not None
            }
            self._rows_until = stop
        return self._rows.get((step, point))

    def slot_from_row(self, step: str, point: int, row: TaskRecord) -> Slot:
        slot = Slot(step, point, state=row.state, attempt=row.attempt, job_ref=row.job_id)
        if row.job_id and row.state in TASK_ACTIVE:
            slot.reattach = self.state.plan.steps[step].step.kind == "batch"
        if row.state == TaskState.SUCCEEDED:
            slot.outcome = Outcome.from_record(row.result, row.result_url)
            if step in self.state.gather_refs and point >= 0:
                self.state.gather_refs[step][point] = slot.outcome
        return slot

    def advance_point(self, point: int) -> None:
        """Submit what is ready, hold/cancel what cannot run; retire the finished point."""
        state = self.state
        slots = state.active[point]
        singles = state.singles
        waiting_on_single = False
        for name in state.plan.foreach_steps:
            slot = slots[name]
            if slot.state not in _OPEN or slot.future is not None:
                continue
            if slot.waiting or slot.to_submit:  # its retry or its submission will come
                continue
            plan = state.plan.steps[name]
            verdict = upstream_verdict(
                [slots[u] for u in plan.pointwise] + [singles[b] for b in plan.broadcast]
            )
            if verdict == Verdict.READY:
                upstream = {u: slots[u].ref for u in plan.pointwise}
                upstream.update({b: singles[b].ref for b in plan.broadcast})
                self.queue(slot, upstream)
            elif verdict == Verdict.HELD:
                self.move(slot, HELD)
            elif verdict == Verdict.CANCELLED:
                self.cancel(slot)
            elif any(not singles[b].resolved for b in plan.broadcast):
                waiting_on_single = True
        if all(slot.resolved for slot in slots.values()):
            del state.active[point]
            state.parked.discard(point)
        elif waiting_on_single and not any(
            s.future is not None or s.state == TaskState.QUEUED for s in slots.values()
        ):
            state.parked.add(point)

    def advance_singles(self) -> None:
        state = self.state
        counts = state.counts
        for name in state.plan.single_steps:
            slot = state.singles[name]
            if slot.resolved or slot.future is not None or slot.waiting or slot.to_submit:
                continue
            if name in state.cancelled_steps:
                self.cancel(slot)
                continue
            step = state.plan.steps[name]
            verdict = upstream_verdict([state.singles[b] for b in step.broadcast])
            for g in step.gathered:
                if counts.get(g, TaskState.FAILED) or counts.get(g, HELD):
                    verdict = Verdict.HELD
                elif (
                    counts.get(g, TaskState.SUCCEEDED) + counts.get(g, TaskState.CANCELLED)
                    < state.plan.points
                ) and verdict == Verdict.READY:
                    verdict = Verdict.WAIT
            if verdict == Verdict.READY:
                upstream: Upstream = {b: state.singles[b].ref for b in step.broadcast}
                upstream.update({g: list(state.gather_refs[g]) for g in step.gathered})
                self.queue(slot, upstream)
            elif verdict == Verdict.HELD:
                self.move(slot, HELD)
            elif verdict == Verdict.CANCELLED:
                self.cancel(slot)

    def queue(self, slot: Slot, upstream: Upstream) -> None:
        state = self.state
        if slot.reattach:
            slot.reattach = False
            if state.batch is not None and state.batch.attach(slot):
                message = f"re-attached to SLURM job {slot.future}"
                state.recorder.event(task_event(slot, slot.state, message))
                return
        slot.job_ref = None
        slot.attempt += 1
        slot.queued_at = time.time()
        self.move(slot, TaskState.QUEUED, attempt_note=True)
        slot.to_submit = True
        state.to_submit.setdefault(slot.step, []).append((slot, upstream))

    def cancel(self, slot: Slot) -> None:
        """Cancel a task: its job or future first, then its state."""
        state = self.state
        if state.batch is not None and isinstance(slot.future, str):
            state.batch.cancel(slot)
        if isinstance(slot.future, Chunk):
            leave_chunk(state, slot)
        if slot.future is not None:
            state.inflight.pop(slot.future.key, None)
            state.client.cancel([slot.future])
            slot.future = None
        slot.waiting = False  # its backoff entry, if any, is dropped when it comes due
        self.move(slot, TaskState.CANCELLED)


def upstream_verdict(upstream: list[Slot]) -> Verdict:
    verdict = Verdict.READY
    for slot in upstream:
        if slot.state in (TaskState.FAILED, HELD):
            return Verdict.HELD
        if slot.state == TaskState.CANCELLED:
            verdict = Verdict.CANCELLED
        elif slot.state != TaskState.SUCCEEDED and verdict == Verdict.READY:
            verdict = Verdict.WAIT
    return verdict
