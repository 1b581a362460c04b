"""Callables the knowledge-graph tests' campaigns run (importable by worker processes)."""

from __future__ import annotations

import os
import time
from typing import Any

from tests.workloads import write_file

GATE_TIMEOUT = 30.0


def gated_write(x: int, seconds: float, gate: str, after: int, ctx: Any) -> str:
    """Sleeps `seconds`; a point ≥ `after` then waits for the file `gate` to exist (at most
    GATE_TIMEOUT), so a test can act while they are held; then writes `value.txt` and a
    line of `task.log` (two outputs per task)."""
    time.sleep(seconds)
    deadline = time.monotonic() + GATE_TIMEOUT
    while x >= after and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return write_file(x, ctx)
