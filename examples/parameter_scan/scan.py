"""A user's own module next to the spec: the CLI makes it importable for the workers."""

from __future__ import annotations

import math
from typing import Any


def damped(frequency_hz: float, damping: float, duration_s: float, ctx: Any) -> dict[str, float]:
    """Peak amplitude of a damped oscillator after `duration_s` (a stand-in for a model)."""
    amplitude = math.exp(-damping * duration_s) * abs(math.cos(2 * math.pi * frequency_hz))
    ctx.log(f"f={frequency_hz} d={damping} → {amplitude:.4f}")
    return {"frequency_hz": frequency_hz, "damping": damping, "amplitude": amplitude}


def best(damped: list[dict[str, float] | None]) -> dict[str, float]:
    """The point with the largest remaining amplitude (fan-in over all points)."""
    finished = [row for row in damped if row is not None]
    return max(finished, key=lambda row: row["amplitude"])
