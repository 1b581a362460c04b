"""Whether the compute's workers can start at all, for a run waiting on them.

A compute that counts its worker jobs failing before their worker starts (SLURM:
`cluster.slurm.worker_starts`) is asked at each control poll; once its limit of failures in
a row is reached since this run began, the run ends `failed` with the reason (the tail of
the last job's stderr) instead of waiting while replacement jobs fail forever. Worker jobs
lost after their worker joined (scancel, walltime, a node failure) are told too, as `worker`
events of the run. Computes
without such a count (a LocalCluster) never stop a run here.
"""

from __future__ import annotations

from typing import Any


class WorkerStartCheck:
    def __init__(self, compute: Any):
        self._starts = getattr(compute, "worker_starts", None)
        self._since = self._starts.mark() if self._starts is not None else 0
        self._lost_seen = len(self._starts.lost_since(0)) if self._starts is not None else 0

    def lost(self) -> list[str]:
        """Worker jobs lost since the last call (their running tasks run again elsewhere)."""
        if self._starts is None:
            return []
        lost = [str(note) for note in self._starts.lost_since(self._lost_seen)]
        self._lost_seen += len(lost)
        return lost

    def failure(self) -> str | None:
        """Why the workers cannot start, or None."""
        if self._starts is None:
            return None
        reason = self._starts.failure(self._since)
        return None if reason is None else str(reason)
