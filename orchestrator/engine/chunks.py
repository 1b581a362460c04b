"""Chunks: several points of a foreach step run by one Dask task (the step's `chunk`).

Guarantees:
- each point stays a task of its own: its slot goes queued → running → succeeded | failed
  like any task's, with its own attempt, result, events, manifest line and provenance. A
  point is `running` from its own start message (when the chunk reaches it), not when its
  chunk starts;
- a point's outcome comes from its report, sent by the worker as the point finishes
  (engine/execute_chunk.py), or from the chunk's return value, whichever comes first: the
  other is ignored, and a report is taken only with the token of the chunk it names;
- a point that fails is retried alone, as any task is (its retry joins the chunk formed
  when it is queued again); the other points of its chunk do not run again;
- a chunk runs its points once: a death of its worker once it has started fails it
  (engine/chunk_plugin.py; a chunk still waiting on that worker runs elsewhere), and a
  chunk Dask starts again (its worker retired) runs nothing (engine/execute_chunk.py).
  A chunk lost (its worker died or retired, its future erred or was cancelled, or one of
  its points is stuck past its timeout)
  loses only the points the engine has no outcome of: one such point fails, as a task whose
  worker died does (a stuck point fails with a timeout); when several are left, each runs
  again in a chunk of its own, and that loss does not count as one of their retries (a loss
  of a chunk of one does);
- a cancelled point leaves its chunk (an outcome of it is ignored); a chunk left with no
  point is cancelled.

How many points a chunk holds (`chunk_sizes`): `chunk: N` makes chunks of N, and a last,
partial chunk waits for more queued points while the step has 2 × worker threads chunks in
flight. `chunk: auto` keeps 2 × worker threads chunks of the step in flight (two per worker
thread: one running, one ready), the rest of its queued points waiting, and sizes each new
chunk when it is made: one point until a point's run time has been measured on a worker,
then TARGET_SECONDS / (the median run time of the step's last SAMPLES points), at most the
window / (2 × worker threads) so that every worker has chunks to run. A first estimate
skewed by a slow first call (imports) is corrected by the chunks after it.
"""

from __future__ import annotations

import logging
import secrets
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from orchestrator.engine.chunk_plugin import CHUNK_KEY_SUFFIX, PLUGIN_NAME, ChunksRunOnce
from orchestrator.engine.execute import TaskCall
from orchestrator.engine.execute_chunk import ChunkCall, execute_chunk, light, outcome_of
from orchestrator.engine.outcome import Outcome, last_line
from orchestrator.engine.plan import StepPlan
from orchestrator.engine.slots import Chunk, Slot
from orchestrator.engine.state import RunState, Upstream, task_event

TARGET_SECONDS = 1.0
SAMPLES = 64
WORKERS_REFRESH = 5.0  # seconds between reads of the number of worker threads
logger = logging.getLogger(__name__)

Entry = tuple[Slot, Upstream]


def chunk_sizes(
    queued: int,
    setting: int | str,
    median: float | None,
    in_flight: int,
    window: int,
    workers: int,
) -> list[int]:
    """The sizes of the chunks to submit now for `queued` points of a step (in order); the
    points beyond their sum stay queued. `median`: the step's median run time of a point
    (None before the first is measured); `in_flight`: the step's chunks in flight."""
    busy = 2 * max(1, workers)
    if setting == "auto":  # sized one chunk at a time, as run times are measured
        room = max(0, busy - in_flight)
        size = 1  # until a run time is known
        if median is not None:
            cap = max(1, window // busy)
            size = max(1, min(cap, int(TARGET_SECONDS / max(median, 1e-6))))
        sizes: list[int] = []
        while queued > 0 and len(sizes) < room:
            sizes.append(min(size, queued))
            queued -= sizes[-1]
        return sizes
    size = int(setting)
    full, rest = divmod(queued, size)
    sizes = [size] * full
    if rest and in_flight + full < busy:
        sizes.append(rest)
    return sizes


class Chunks:
    def __init__(
        self,
        state: RunState,
        on_outcome: Callable[[Slot, Outcome], None],
        requeue: Callable[[int], None],
    ):
        self.state = state
        self.on_outcome = on_outcome
        self.requeue = requeue  # Admission.advance_point
        self.reports: deque[dict[str, Any]] = deque()  # filled on the client's thread
        self.samples: dict[str, deque[float]] = {}
        self._workers = 1
        self._workers_at = 0.0

    # ------------------------------------------------------------ submission
    def submit(
        self,
        plan: StepPlan,
        batch: list[Entry],
        make_call: Callable[[str, Slot], TaskCall],
        resources: dict[str, float] | None,
    ) -> list[Entry]:
        """Submit the queued points of a chunked step; returns those that wait."""
        state = self.state
        assert plan.step.chunk is not None
        _register_plugin(state.client)
        alone = [entry for entry in batch if entry[0].isolated]
        rest = [entry for entry in batch if not entry[0].isolated]
        in_flight = sum(
            1 for e in state.inflight.values() if isinstance(e, Chunk) and e.step == plan.name
        )
        sizes = chunk_sizes(
            len(rest),
            plan.step.chunk,
            self.median(plan.name),
            in_flight + len(alone),
            state.window,
            self.workers(),
        )
        groups = [[entry] for entry in alone]
        start = 0
        for size in sizes:
            groups.append(rest[start : start + size])
            start += size
        if not groups:
            return rest
        chunks, calls, upstreams = [], [], []
        for group in groups:
            first = group[0][0]
            key = f"{plan.name}-{state.campaign_id}-{first.point}-{first.attempt}{CHUNK_KEY_SUFFIX}"
            chunk = Chunk(key, secrets.token_hex(8), plan.name, [slot for slot, _ in group])
            chunks.append(chunk)
            step_calls = [make_call(plan.name, slot) for slot in chunk.slots]
            calls.append(ChunkCall(key, chunk.token, step_calls))
            upstreams.append([up for _, up in group])
        futures = state.client.map(
            execute_chunk,
            calls,
            upstreams,
            key=[c.key for c in chunks],
            pure=False,
            resources=resources,
        )
        for chunk, future in zip(chunks, futures, strict=True):
            chunk.future = future
            state.inflight[chunk.key] = chunk
            for slot in chunk.slots:  # running again once its start message comes
                slot.future, slot.isolated, slot.started_at = chunk, False, None
        return rest[start:]

    def workers(self) -> int:
        now = time.monotonic()
        if now >= self._workers_at:
            self._workers_at = now + WORKERS_REFRESH
            try:
                self._workers = sum(self.state.client.nthreads().values()) or 1
            except Exception:  # the scheduler is away for a moment: keep the last count
                logger.debug("could not read the number of worker threads", exc_info=True)
        return self._workers

    def median(self, step: str) -> float | None:
        samples = self.samples.get(step)
        return statistics.median(samples) if samples else None

    # ------------------------------------------------------------- outcomes
    def on_report(self, msg: dict[str, Any]) -> None:
        """A worker's report of a finished point (called on the client's thread)."""
        self.reports.append(msg)

    def drain(self) -> None:
        """Take the reports received so far."""
        inflight = self.state.inflight
        while self.reports:
            msg = self.reports.popleft()
            chunk = inflight.get(msg.get("k"))
            index = msg.get("i")
            if not isinstance(chunk, Chunk) or msg.get("t") != chunk.token:
                continue
            if not isinstance(index, int) or not 0 <= index < len(chunk.slots):
                continue
            slot = chunk.slots[index]
            if slot.future is not chunk or slot.attempt != msg.get("a"):
                continue
            try:
                outcome = outcome_of(str(msg.get("o")))
            except (TypeError, ValueError, KeyError):
                continue
            self._finish(slot, outcome)

    def on_result(self, chunk: Chunk, outcomes: Any) -> None:
        """The chunk's return value: an outcome per point, in order."""
        self.drain()
        if not isinstance(outcomes, list) or len(outcomes) != len(chunk.slots):
            self.on_lost(chunk, f"the chunk returned {type(outcomes).__name__}, not its outcomes")
            return
        for slot, outcome in zip(chunk.slots, outcomes, strict=True):
            if slot.future is chunk:
                self._finish(slot, outcome)

    def on_lost(self, chunk: Chunk, error: str, stuck: Slot | None = None) -> None:
        """The chunk ended without its outcomes (see the module's guarantees)."""
        self.drain()
        if error.startswith("KilledWorker"):  # Dask's text counts workers it never tried
            error = "KilledWorker: the worker running this chunk died"
        pending = chunk.pending()
        for slot in pending:
            slot.future = None
        if stuck is not None:
            pending.remove(stuck)
            self.on_outcome(stuck, Outcome(ok=False, error=error, finished_at=time.time()))
        elif len(pending) == 1:
            self.on_outcome(pending[0], Outcome(ok=False, error=error, finished_at=time.time()))
            return
        message = f"attempt {{}} lost with its chunk ({last_line(error)}): runs again on its own"
        for slot in pending:
            slot.isolated = True
            self.state.recorder.event(task_event(slot, slot.state, message.format(slot.attempt)))
            if slot.point in self.state.active:
                self.requeue(slot.point)

    def _finish(self, slot: Slot, outcome: Outcome) -> None:
        slot.future = None
        if outcome.started_at is not None and outcome.finished_at is not None:
            seconds = max(0.0, outcome.finished_at - outcome.started_at)
            self.samples.setdefault(slot.step, deque(maxlen=SAMPLES)).append(seconds)
        self.on_outcome(slot, light(outcome))

    # ------------------------------------------------------------ deadlines
    def check_deadlines(self, now: float) -> None:
        """A point stuck past its timeout (in C code, say) loses its chunk."""
        state, config = self.state, self.state.config
        self.drain()
        timeout = {name: state.plan.steps[name].step.timeout for name in state.plan.steps}
        stuck: list[tuple[Chunk, Slot]] = []
        for chunk in [e for e in state.inflight.values() if isinstance(e, Chunk)]:
            limit = timeout[chunk.step]
            if limit is None:
                continue
            for slot in chunk.pending():
                if slot.started_at is not None and now > (
                    slot.started_at + limit + config.timeout_grace + config.upload_deadline
                ):
                    stuck.append((chunk, slot))
                    break
        for chunk, slot in stuck:
            state.inflight.pop(chunk.key, None)
            state.client.cancel([chunk.future])
            self.on_lost(chunk, "TaskTimeout: still running past its timeout; abandoned", slot)


def leave_chunk(state: RunState, slot: Slot) -> None:
    """The point leaves its chunk (it is cancelled); a chunk left with no point is cancelled."""
    chunk = slot.future
    assert isinstance(chunk, Chunk)
    slot.future = None
    if not chunk.pending() and state.inflight.pop(chunk.key, None) is not None:
        state.client.cancel([chunk.future])


def _register_plugin(client: Any) -> None:
    """Once per client. Without it a chunk whose worker died is started again by Dask, and
    runs nothing then (its start mark): its points are queued again a little later."""
    if getattr(client, "_orchestrator_chunks_plugin", False):
        return
    client._orchestrator_chunks_plugin = True
    try:
        client.register_plugin(ChunksRunOnce())
    except Exception as exc:
        logger.warning("could not register %s on the scheduler: %s", PLUGIN_NAME, exc)
