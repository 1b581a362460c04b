"""Manifest parts for object stores, written in order by a thread of their own.

Object stores cannot append, so each flush of manifest lines becomes one object, named so
that names sort in write order. The engine hands lines over from its recorder thread, which
must never wait on S3: during an outage the parts queue up here and go out, in order, once
the store is back. A part that still cannot be written `MANIFEST_DEADLINE` seconds after it
was queued is given up (logged; the state store still holds every task's record), so that
a process can always exit; the thread is not a daemon, so an exiting process sends what is
queued first.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.results import upload
from orchestrator.results.retry import MAX_DELAY

logger = logging.getLogger(__name__)
IDLE_SECONDS = 1.0  # the writer thread ends when nothing was queued for this long

Put = Callable[[bytes, str, float], None]
"""Store `data` at a relative path, retrying until a `time.monotonic()` deadline."""


@dataclass
class _Part:
    name: str
    data: bytes
    give_up_at: float


class PartWriter:
    def __init__(self, put: Put, folder: str = "manifest"):
        self._put = put
        self._folder = folder
        self._parts: list[_Part] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.given_up: list[str] = []  # why each part given up was not written

    def add(self, data: bytes) -> str:
        """Queue one part; returns its name (relative to the location)."""
        name = f"{self._folder}/part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl"
        with self._cond:
            self._parts.append(_Part(name, data, time.monotonic() + upload.MANIFEST_DEADLINE))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="orchestrator-manifest", daemon=False
                )
                self._thread.start()
            self._cond.notify_all()
        return name

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued part is written or given up; False on timeout."""
        ends = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._parts:
                left = None if ends is None else ends - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        pause = 0.0
        while True:
            with self._cond:
                if pause:
                    self._cond.wait(pause)
                if not self._parts:
                    self._cond.wait(IDLE_SECONDS)
                if not self._parts:
                    self._thread = None
                    return
                part = self._parts[0]
            lost = None
            try:
                self._put(part.data, part.name, part.give_up_at)
                done = True
            except Exception as exc:
                done = time.monotonic() >= part.give_up_at
                if done:
                    lines = part.data.count(b"\n")
                    logger.error(
                        "gave up writing manifest part %s (%d lines): %s", part.name, lines, exc
                    )
                    lost = f"{lines} line(s) not written: {exc}"
            with self._cond:
                if done:
                    self._parts.pop(0)
                    if lost is not None:
                        self.given_up.append(lost)
                    self._cond.notify_all()
                pause = 0.0 if done else min(MAX_DELAY, 1.0)
