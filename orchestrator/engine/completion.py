"""Completion: finished futures and jobs become outcomes, and outcomes become task states.

Guarantees:
- every submitted task ends with an outcome: its own, an error when its future was lost or
  raised, or a timeout when it is stuck past its `timeout` (plus grace and upload time);
- a failed attempt is retried after an exponential backoff with jitter, up to the step's
  `retries`; a cancelled task stays cancelled whatever its outcome;
- a task counts as running from its worker's "started" message, or from its outcome when
  that comes first, so no task goes from queued to finished without being running;
- the points of a chunk finish one by one, as engine/chunks.py says.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from typing import Any

from orchestrator.engine.admission import Admission
from orchestrator.engine.chunks import Chunks
from orchestrator.engine.exports import ExportSchedule
from orchestrator.engine.outcome import Outcome, last_line
from orchestrator.engine.slots import Chunk, Slot
from orchestrator.engine.state import Move, RunState, task_event
from orchestrator.states import TaskState
from orchestrator.store import SINGLE

_DONE = frozenset({"finished", "error", "cancelled"})  # Dask's statuses of a future that ended
SCAN_MISSES = 64  # unfinished futures in a row that end a partial scan of `inflight`
FULL_SCAN_INTERVAL = 0.25  # seconds between scans of every in-flight future
BATCH_SHARE = 4  # a collection waits (up to `collect_wait`) for 1/4 of the in-flight tasks


class Completion:
    def __init__(
        self,
        state: RunState,
        move: Move,
        admission: Admission,
        exports: ExportSchedule | None,
        started: deque[dict[str, Any]],
    ):
        self.state = state
        self.move = move
        self.admission = admission
        self.exports = exports
        self.started = started  # "started" messages from workers (see engine/started.py)
        self._next_full_scan = 0.0
        self._retry_seq = 0
        self.chunks = Chunks(state, self.on_outcome, admission.advance_point)

    def collect(self, timeout: float) -> None:
        """Handle every future that finished, waiting up to `timeout` for the first.

        Polls the futures' states (local attributes the client keeps current) every
        `collect_linger`: cheaper than a callback per future. Once one has finished it waits,
        up to `collect_wait`, for a share of what is in flight (`BATCH_SHARE`) to finish too:
        each gather and each refill of the window (`client.map`) costs round trips to the
        scheduler and the workers, so a few large ones cost much less than many small ones.
        """
        state, config = self.state, self.state.config
        deadline = time.time() + timeout
        first: float | None = None
        while True:
            mine = self._finished_futures()
            now = time.time()
            waiting_on_jobs = state.batch is not None and bool(state.batch.inflight)
            if not (state.inflight or waiting_on_jobs):
                break
            if mine:
                first = now if first is None else first
                if (
                    len(mine) * BATCH_SHARE >= len(state.inflight)
                    or now - first >= config.collect_wait
                    or now >= deadline
                ):
                    break
                pause = min(config.collect_linger, first + config.collect_wait - now)
            elif now >= deadline:
                break
            else:
                pause = min(config.collect_linger, deadline - now)
            time.sleep(max(pause, 0.0))
        self._collect_batch()
        if not mine:
            return
        self.chunks.drain()  # reports name their chunk: taken while it is still in flight
        finished = [f for f in mine if f.status == "finished"]
        outcomes = state.client.gather(finished, errors="raise") if finished else []
        for future, outcome in zip(finished, outcomes, strict=True):
            entry = state.inflight.pop(future.key)
            if isinstance(entry, Chunk):
                self.chunks.on_result(entry, outcome)
            else:
                self.on_outcome(entry, outcome)
        for future in mine:
            if future.status == "finished":
                continue
            entry = state.inflight.pop(future.key)
            if future.status == "cancelled":
                error = "the task's Dask future was cancelled (scheduler or worker lost)"
            else:
                exc = future.exception()
                error = f"{type(exc).__name__}: {exc}"
            if isinstance(entry, Chunk):
                self.chunks.on_lost(entry, error)
            else:
                self.on_outcome(entry, Outcome(ok=False, error=error, finished_at=time.time()))

    def _finished_futures(self) -> list[Any]:
        """The in-flight futures that are done. Tasks finish roughly in the order they were
        submitted (`inflight` keeps that order), so most scans stop after a run of
        `SCAN_MISSES` unfinished futures instead of reading every one; a full scan every
        `FULL_SCAN_INTERVAL` catches a task that finished out of order."""
        now = time.monotonic()
        full = now >= self._next_full_scan
        if full:
            self._next_full_scan = now + FULL_SCAN_INTERVAL
        found = []
        misses = 0
        for entry in self.state.inflight.values():
            future = entry.future
            if future is None:
                continue
            if future.status in _DONE:
                found.append(future)
                misses = 0
            elif not full:
                misses += 1
                if misses >= SCAN_MISSES:
                    break
        return found

    def _collect_batch(self) -> None:
        if self.state.batch is None:
            return
        started, ended = self.state.batch.poll(time.time())
        for slot in started:
            if slot.state == TaskState.QUEUED:
                slot.started_at = time.time()
                self.move(slot, TaskState.RUNNING, worker=f"slurm:{slot.future}")
        for slot, outcome in ended:
            self.on_outcome(slot, outcome)

    def on_outcome(self, slot: Slot, outcome: Outcome) -> None:
        if slot.state == TaskState.CANCELLED:
            return
        if slot.started_at is None:
            slot.started_at = outcome.started_at
        if slot.state == TaskState.QUEUED and outcome.started_at is not None:
            # finished before its 'started' message arrived: record the running state too
            self.move(slot, TaskState.RUNNING, worker=outcome.worker)
        if outcome.ok:
            self._succeed(slot, outcome)
        else:
            self._fail(slot, outcome)
        if self.exports is not None:
            self.exports.after_task(slot.step)
        if slot.point == SINGLE:
            if slot.resolved:
                self.state.release_parked()
        elif slot.point in self.state.active:
            self.admission.advance_point(slot.point)

    def _succeed(self, slot: Slot, outcome: Outcome) -> None:
        state = self.state
        slot.outcome = outcome
        if self.exports is not None:
            self.exports.note_outputs(outcome.outputs)
        if slot.step in state.gather_refs:
            state.gather_refs[slot.step][slot.point] = (
                slot.future if slot.future is not None else outcome
            )
        elif not state.plan.steps[slot.step].downstream:
            slot.future = None  # nothing downstream needs it: let the worker drop it
        self.move(slot, TaskState.SUCCEEDED, outcome=outcome)

    def _fail(self, slot: Slot, outcome: Outcome) -> None:
        state = self.state
        slot.future = None
        slot.failures += 1
        step = state.plan.steps[slot.step].step
        error = outcome.error or "failed"
        if slot.failures <= step.retries:
            delay = min(
                state.config.retry_backoff * 2 ** (slot.failures - 1),
                state.config.retry_backoff_max,
            ) * random.uniform(0.8, 1.2)
            message = f"attempt {slot.attempt} failed, retry in {delay:.1f}s: {last_line(error)}"
            state.recorder.event(task_event(slot, TaskState.FAILED, message))
            self._retry_seq += 1
            slot.waiting = True
            heapq.heappush(state.retries, (time.time() + delay, self._retry_seq, slot))
            return
        self.move(slot, TaskState.FAILED, outcome=outcome, error=error)

    def release_retries(self, now: float) -> None:
        """Backoffs that ended: the slots become ready again (cancelled ones stay cancelled)."""
        state = self.state
        while state.retries and state.retries[0][0] <= now:
            _, _, slot = heapq.heappop(state.retries)
            slot.waiting = False
            if slot.point != SINGLE and slot.point in state.active:
                # singles: Admission.advance_singles queues them again
                self.admission.advance_point(slot.point)

    def mark_started(self) -> None:
        """Take the workers' messages: tasks started, and points of chunks finished."""
        self.chunks.drain()
        state = self.state
        while self.started:
            msg = self.started.popleft()
            point = SINGLE if msg["p"] is None else msg["p"]
            slot = (
                state.singles.get(msg["s"])
                if point == SINGLE
                else state.active.get(point, {}).get(msg["s"])
            )
            if slot is None or slot.attempt != msg["a"] or slot.state != TaskState.QUEUED:
                continue
            slot.started_at = msg["t"]
            self.move(slot, TaskState.RUNNING, worker=msg.get("w"))

    def check_deadlines(self, now: float) -> None:
        """The worker enforces `timeout`; this catches a task stuck in C code past it."""
        state, config = self.state, self.state.config
        self.chunks.check_deadlines(now)
        stuck = [
            slot
            for slot in state.inflight.values()
            if isinstance(slot, Slot)
            and slot.started_at is not None
            and (timeout := state.plan.steps[slot.step].step.timeout) is not None
            # a worker may still be uploading the task's files after its timeout
            and now > slot.started_at + timeout + config.timeout_grace + config.upload_deadline
        ]
        for slot in stuck:
            future = slot.future
            state.inflight.pop(future.key, None)
            state.client.cancel([future])
            self.on_outcome(
                slot,
                Outcome(
                    ok=False,
                    error="TaskTimeout: still running past its timeout; abandoned",
                    finished_at=now,
                ),
            )
