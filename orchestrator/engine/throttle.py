"""Applies a campaign's live throttle (see orchestrator/throttle.py) to the run.

The throttle is read from the campaign's row, when the run starts (a resumed campaign
keeps it) and on each `throttle` control. Guarantees:
- the window admits no new point while `min(throttle, engine.max_in_flight)` points are in
  flight; points admitted before a lower throttle run to their end (none is taken back);
- a batch step's job arrays in flight get the new parallelism at once, over SSH, and the
  step's later arrays are submitted with it;
- each change is recorded once as a `throttle-applied` event.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.engine.state import RunState
from orchestrator.store import EventWrite


def apply_throttle(state: RunState, throttle: dict[str, Any] | None) -> None:
    if not throttle:
        return
    now = time.time()
    window = throttle.get("window")
    if window and window != state.throttle_window:
        state.throttle_window = int(window)
        message = f"window: at most {state.window} point(s) in flight"
        if state.window < int(window):
            message += f" (engine.max_in_flight is {state.config.max_in_flight})"
        state.recorder.event(EventWrite(now, "throttle-applied", message=message))
    for step, limit in (throttle.get("steps") or {}).items():
        if state.batch is None or step not in state.plan.steps:
            continue
        if state.batch.parallelism.get(step) == limit:
            continue
        refused = state.batch.throttle(step, int(limit))
        message = f"at most {limit} task(s) of each job array at once"
        if refused:
            message += "; SLURM refused " + ", ".join(f"{k}: {v}" for k, v in refused.items())
        state.recorder.event(EventWrite(now, "throttle-applied", step=step, message=message))
