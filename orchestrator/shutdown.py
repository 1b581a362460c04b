"""Stopping the process within seconds of SIGTERM (or Ctrl-C), whatever it is doing.

The first signal starts an orderly stop (engines stop, what is recorded is committed, leases
are given back) and arms a deadline: when the orderly stop has not ended the process by then
(a retry loop, a long SSH call, an upload, a cluster that does not close), the process ends
anyway, its child processes (Dask workers, the provenance sender) first. Nothing is lost by
it: every finished task is committed before it is reported, so the campaigns stay
resumable, and a lease of a dead process on this host is free at once. A second signal ends
the process at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

_armed = threading.Event()


def exit_by(seconds: float, code: int) -> None:
    """End the process with `code` `seconds` from now unless it ended before (once)."""
    if _armed.is_set():
        _exit_now(code)  # a second signal: at once
    _armed.set()
    thread = threading.Thread(
        target=_exit_later, args=(seconds, code), name="orchestrator-exit-deadline", daemon=True
    )
    thread.start()


def _exit_later(seconds: float, code: int) -> None:
    threading.Event().wait(seconds)
    logger.error("still stopping %gs after the signal: exiting now (campaigns resumable)", seconds)
    _exit_now(code)


def _exit_now(code: int) -> None:
    for child in multiprocessing.active_children():
        with suppress(OSError):
            child.kill()
    try:
        sys.stderr.flush()
    finally:
        os._exit(code)


@contextmanager
def interrupt_on_terminate(grace: float, code: int) -> Iterator[None]:
    """In the main thread: SIGTERM interrupts like Ctrl-C (`KeyboardInterrupt`), and either
    signal arms the exit deadline of `grace` seconds."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        exit_by(grace, code)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: its caller handles them
        return
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
