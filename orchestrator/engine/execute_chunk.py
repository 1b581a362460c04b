"""The code that runs on a Dask worker for one chunk: several points of a step, one Dask task.

Each point runs as `execute_task` runs a task (its own output folder, logs, timeout, start
message, outcome). As each point finishes, a small report of its outcome goes to the engine
through the worker's event log (topic FINISHED_TOPIC, flushed every `interval`), so that a
chunk lost with its worker re-runs only the points the engine has not heard of. The chunk's
return value holds every point's outcome again (the engine ignores what it already has);
outcomes travel without their inline value: what a point stored, or the file it wrote its
value to, is where the engine and downstream tasks read it.

A chunk runs its points once: it marks its start with a small file in the results
location (`.chunks/<key>`, created only if absent, and kept). When Dask
starts it again — its worker left while it ran: retired (`--lifetime`), or died before the
chunk's start message reached the scheduler (after it, the engine's scheduler plugin makes a
death fail the chunk) — it finds the mark and raises ChunkStartedBefore without running a
point.

A report carries the chunk's token (a random value made by the engine for this chunk), so
a report naming a chunk it was not made for is ignored. A report larger than REPORT_LIMIT is
not sent: that point's outcome reaches the engine with the chunk's return value only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.engine.chunk_plugin import CHUNK_STARTED_TOPIC
from orchestrator.engine.execute import TaskCall, execute_task, task_location
from orchestrator.engine.outcome import Outcome
from orchestrator.errors import ChunkStartedBefore

FINISHED_TOPIC = "orchestrator-task-finished"
MARKS = ".chunks"  # the chunks' start marks, in the campaign's results location
REPORT_LIMIT = 8192
"""Bytes of a point's report at most (the scheduler keeps recent events in memory)."""
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ChunkCall:
    key: str  # the chunk's Dask key
    token: str
    calls: list[TaskCall]


def light(outcome: Outcome) -> Outcome:
    """The outcome without its inline value: what it stored (small JSON) or where it wrote
    the value (`result_url`) is enough for `Outcome.load`."""
    if not outcome.ok:
        return replace(outcome, value=None)
    return replace(outcome, value=None, inline=False)


def report_of(outcome: Outcome) -> str:
    fields = {
        "ok": outcome.ok,
        "stored": outcome.stored,
        "result_url": outcome.result_url,
        "error": outcome.error,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "worker": outcome.worker,
        "outputs": outcome.outputs,
    }
    return json.dumps(fields, allow_nan=False)


def outcome_of(report: str) -> Outcome:
    fields = json.loads(report)
    return Outcome(inline=not fields["ok"], **fields)


def execute_chunk(chunk: ChunkCall, upstreams: list[dict[str, Any]]) -> list[Outcome]:
    """Run the chunk's points in order; every point's outcome, without inline values (the
    engine keeps what a point stored, and downstream tasks read it from there)."""
    worker = _worker()
    outcomes: list[Outcome] = []
    _mark_start(chunk)
    if worker is not None:  # from now on, a death of this worker fails the chunk
        worker.log_event(CHUNK_STARTED_TOPIC, {"k": chunk.key})
    try:
        for index, (call, upstream) in enumerate(zip(chunk.calls, upstreams, strict=True)):
            outcome = light(execute_task(call, upstream))
            outcomes.append(outcome)
            if worker is not None:
                _REPORTER.finished(worker, chunk, index, outcome)
    finally:
        if worker is not None:
            _REPORTER.take(chunk.key)  # not sent yet: they go back with the chunk instead
    return outcomes


def _mark_start(chunk: ChunkCall) -> None:
    """Make the chunk's start mark; ChunkStartedBefore when it was there already. A location
    that cannot make it (a store without exclusive writes) leaves the chunk unmarked."""
    location = task_location(chunk.calls[0].results_url)
    path = location.path(f"{MARKS}/{chunk.key}")
    try:
        if location.is_local:
            location.fs.makedirs(location.path(MARKS), exist_ok=True)
        with location.fs.open(path, "xb") as mark:
            mark.write(b"started\n")  # not empty: S3 writes an empty file without the check
    except FileExistsError:
        raise ChunkStartedBefore(
            f"chunk {chunk.key} started before, on a worker that left while it ran"
        ) from None
    except Exception as exc:
        logger.warning("chunk %s: could not mark its start (%s)", chunk.key, exc)


def _worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except ValueError:  # not on a Dask worker (direct call, tests)
        return None


class _Reporter:
    """Sends finished points' reports in batches per worker process, every `interval`."""

    interval = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, dict[int, dict[str, Any]]] = {}
        self._worker: Any = None
        self._thread: threading.Thread | None = None

    def finished(self, worker: Any, chunk: ChunkCall, index: int, outcome: Outcome) -> None:
        """Queue the point's report (none when it is too large to send)."""
        try:
            report = report_of(outcome)
        except (TypeError, ValueError):
            return
        if len(report) > REPORT_LIMIT:
            return
        call = chunk.calls[index]
        msg = {
            "c": call.campaign_id,
            "k": chunk.key,
            "t": chunk.token,
            "i": index,
            "a": call.attempt,
            "o": report,
        }
        with self._lock:
            self._worker = worker
            self._pending.setdefault(chunk.key, {})[index] = msg
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="orchestrator-reporter", daemon=True
                )
                self._thread.start()

    def take(self, key: str) -> list[int]:
        """The chunk's reports not sent yet, taken back (the chunk returns them)."""
        with self._lock:
            return list(self._pending.pop(key, {}))

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:  # sent under the lock: before the chunk can take them back
                batch = [msg for msgs in self._pending.values() for msg in msgs.values()]
                self._pending = {}
                if batch and self._worker is not None:
                    try:
                        self._worker.log_event(FINISHED_TOPIC, {"batch": batch})
                    except Exception:  # the worker is closing: the chunk's return tells
                        return


_REPORTER = _Reporter()
