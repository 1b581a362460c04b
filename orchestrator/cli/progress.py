"""Live progress per step on a terminal; periodic plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

DONE = ("succeeded", "failed", "cancelled", "held")


class StepProgress:
    """A progress callback for the engine (called from its recorder thread)."""

    def __init__(self, steps: dict[str, int], stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._lock = threading.Lock()
        self._last_line = 0.0
        self._latest: dict[str, dict[str, int]] = {}
        self._progress: Progress | None = None
        self._tasks: dict[str, Any] = {}
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description:<16}"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            for name, total in steps.items():
                self._tasks[name] = self._progress.add_task(name, total=total, detail="")

    def __enter__(self) -> StepProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self._latest:
            self._print_line(force=True)

    def __call__(self, snapshot: dict[str, dict[str, int]]) -> None:
        with self._lock:
            self._latest = snapshot
            if self._progress is not None:
                for name, counts in snapshot.items():
                    if name in self._tasks:
                        done = sum(counts.get(s, 0) for s in DONE)
                        self._progress.update(
                            self._tasks[name], completed=done, detail=describe(counts)
                        )
            else:
                self._print_line()

    def _print_line(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_line < 5.0:
            return
        self._last_line = now
        parts = []
        for name, counts in self._latest.items():
            done = sum(counts.get(s, 0) for s in DONE)
            parts.append(f"{name} {done}/{counts.get('total', 0)} {describe(counts)}".rstrip())
        print("progress: " + " | ".join(parts), file=self.stream, flush=True)


def describe(counts: dict[str, int]) -> str:
    shown = [
        ("running", "running"),
        ("queued", "queued"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
        ("held", "held"),
    ]
    return " ".join(f"{counts[k]} {label}" for k, label in shown if counts.get(k))
