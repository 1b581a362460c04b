"""Progress of a campaign as text: `describe` summarises one step's task counts, and the
printer behind `Client.wait(progress=True)` writes to stderr only what changed since its last
line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any


def _print_progress(campaign_id: str) -> Callable[[dict[str, Any]], None]:
    last_state: list[str] = []
    last_counts: dict[str, Any] = {}

    def report(status: dict[str, Any]) -> None:
        if status["state"] not in last_state[-1:]:
            print(f"campaign {campaign_id}: {status['state']}", file=sys.stderr, flush=True)
            last_state.append(status["state"])
        for name, counts in status["steps"].items():
            if counts != last_counts.get(name):
                print(f"  {name}: {describe(counts)}", file=sys.stderr, flush=True)
                last_counts[name] = counts

    return report


def describe(counts: Mapping[str, int]) -> str:
    """`4/6 done (3 succeeded, 1 failed), 2 running`."""
    done = {s: counts.get(s, 0) for s in ("succeeded", "failed", "cancelled") if counts.get(s)}
    active = {s: counts.get(s, 0) for s in ("running", "queued") if counts.get(s)}
    text = f"{sum(done.values())}/{counts.get('total', 0)} done"
    if done:
        text += " (" + ", ".join(f"{n} {s}" for s, n in done.items()) + ")"
    return text + "".join(f", {n} {s}" for s, n in active.items())
