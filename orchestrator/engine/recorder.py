"""Batches the engine's writes to the store on a thread of its own.

Writes are merged and committed together (one transaction per flush), so persistence costs
little throughput; callbacks run only after the commit, so nothing is reported before it
is durable. Every batch names the runner, so the store refuses it (`LeaseLost`) once that
runner's lease is lost; the recorder then writes nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.errors import LeaseLost, StoreError
from orchestrator.store import EventWrite, Store, TaskWrite, WriteBatch

logger = logging.getLogger(__name__)

Durable = Callable[[list[TaskWrite], Any], None]
CLOSE_TIMEOUT = 10.0  # seconds `close` waits for the writer's thread, once all is committed


class Recorder:
    def __init__(
        self,
        store: Store,
        campaign_id: str,
        on_durable: Durable,
        *,
        interval: float = 0.05,
        max_batch: int = 5000,
        runner: str | None = None,
    ):
        self._store = store
        self._campaign_id = campaign_id
        self._on_durable = on_durable
        self._interval = interval
        self._max_batch = max_batch
        self._lock = threading.Condition()
        self._runner = runner
        self._pending = self._new_batch()
        self._snapshot: Any = None
        self._closed = False
        self._error: BaseException | None = None
        self._flushing = False
        self._flushing_tasks = 0
        self._thread = threading.Thread(
            target=self._loop, name="orchestrator-recorder", daemon=True
        )
        self._thread.start()

    def task(self, write: TaskWrite, event: EventWrite | None = None) -> None:
        with self._lock:
            self._pending.tasks[(write.step, write.point)] = write
            if event is not None:
                self._pending.events.append(event)
            if len(self._pending.tasks) >= self._max_batch:
                self._lock.notify_all()

    def register(self, kind: str, payload: dict[str, Any]) -> None:
        """A knowledge-graph registration, committed with the state change it describes."""
        with self._lock:
            self._pending.outbox.append((kind, payload))

    def event(self, event: EventWrite) -> None:
        with self._lock:
            self._pending.events.append(event)

    def campaign_state(self, state: str, message: str | None = None) -> None:
        with self._lock:
            self._pending.campaign_state = state
            self._pending.campaign_message = message

    def snapshot(self, value: Any) -> None:
        """The progress to publish once everything recorded so far is durable."""
        with self._lock:
            self._snapshot = value

    def flush(self) -> None:
        """Block until everything recorded so far is committed (raises the writer's error)."""
        with self._lock:
            while (self._pending or self._flushing) and self._error is None:
                self._lock.notify_all()
                self._lock.wait(0.05)
            if isinstance(self._error, LeaseLost):
                raise self._error
            if self._error is not None:
                raise StoreError(f"state store write failed: {self._error}") from self._error

    def abandon(self) -> None:
        """Stop without writing what is still pending (this runner lost its lease)."""
        with self._lock:
            self._pending = self._new_batch()
            self._closed = True
            self._lock.notify_all()
        self._thread.join()

    def _new_batch(self) -> WriteBatch:
        return WriteBatch(self._campaign_id, runner=self._runner)

    def close(self) -> None:
        self.flush()  # everything recorded is committed (or this raises)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():  # nothing is lost (flushed above); a run must not hang
            logger.error("the store writer of campaign %s did not stop", self._campaign_id)

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def backlog(self) -> int:
        """Task writes recorded and not committed yet (pending, and being written)."""
        with self._lock:
            return len(self._pending.tasks) + self._flushing_tasks

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._pending and not self._closed:
                    self._lock.wait(self._interval)
                if self._closed and not self._pending:
                    return
                if self._error is not None:
                    return  # a write failed for good: nothing more is written
                batch, self._pending = self._pending, self._new_batch()
                snapshot = self._snapshot
                self._flushing = bool(batch)
                self._flushing_tasks = len(batch.tasks)
            if batch:
                self._write(batch, snapshot)
            with self._lock:
                self._flushing = False
                self._flushing_tasks = 0
                self._lock.notify_all()
            if batch:
                time.sleep(self._interval)  # let the next batch grow

    def _write(self, batch: WriteBatch, snapshot: Any) -> None:
        delay = 0.1
        for attempt in range(8):
            try:
                self._store.apply(batch)
                break
            except LeaseLost as exc:  # another runner took over: never retried
                self._fail(exc)
                return
            except StoreError as exc:  # transient: locked database, dropped connection
                logger.warning("store write failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                self._fail(exc)
                return
        else:
            self._fail(StoreError("state store unavailable after 8 attempts"))
            return
        try:
            self._on_durable(list(batch.tasks.values()), snapshot)
        except Exception:
            logger.exception("progress callback failed")

    def _fail(self, exc: BaseException) -> None:
        logger.error("state store write failed for good: %s", exc)
        with self._lock:
            self._error = exc
            self._lock.notify_all()
