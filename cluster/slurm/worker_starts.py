"""Worker jobs that keep failing before their worker starts (a wrong `slurm.python`, a
module that does not load, a broken node): counted, so that a campaign waiting on workers
fails with the reason instead of waiting while replacements fail forever.

A worker job "failed to start" when it ended (other than `scancel`led) without its worker
ever joining the scheduler; a worker that joins resets the count. The engine marks the
count when its run starts and fails its campaign once `limit` jobs in a row failed since,
with the tail of the last job's stderr in the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from cluster.slurm.commands import JobStatus, SlurmCommands
from cluster.slurm.states import JobState

STDERR_TAIL = 2000  # bytes of a failed worker job's stderr kept in the reason


class WorkerStarts:
    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._joined: set[str] = set()
        self._total = 0  # start failures ever
        self._in_a_row = 0
        self._last = ""
        self._lost: list[str] = []  # worker jobs that ended after their worker had joined

    def joined(self, names: Iterable[str]) -> None:
        """These worker jobs' workers are (or were) connected to the scheduler."""
        with self._lock:
            new = set(names) - self._joined
            if new:
                self._joined |= new
                self._in_a_row = 0

    def had_joined(self, name: str) -> bool:
        with self._lock:
            return name in self._joined

    def counts(self, name: str, status: JobStatus) -> bool:
        """Whether the ended job `name` counts as a start failure (its stderr is then given
        to `failed`)."""
        with self._lock:
            return name not in self._joined and status.state is not JobState.CANCELLED

    def lost(self, status: JobStatus) -> None:
        """A worker job whose worker had joined ended (scancel, walltime, node failure): the
        tasks it was running run again on another worker."""
        what = f"worker job {status.job_id} ended ({status.state.value}"
        if status.reason and status.reason != "None":
            what += f": {status.reason}"
        with self._lock:
            self._lost.append(what + "); its running tasks run again on another worker")

    def lost_since(self, seen: int) -> list[str]:
        """What `lost` noted after the first `seen` notes."""
        with self._lock:
            return self._lost[seen:]

    def failed(self, status: JobStatus, stderr: str) -> None:
        what = f"worker job {status.job_id} {status.state.value}"
        if status.exit_code is not None:
            what += f" with exit code {status.exit_code}"
        if status.reason and status.reason != "None":
            what += f" ({status.reason})"
        tail = stderr.strip()[-STDERR_TAIL:]
        with self._lock:
            self._total += 1
            self._in_a_row += 1
            self._last = f"{what}; its stderr ends:\n{tail}" if tail else what

    def mark(self) -> int:
        """A mark to count failures from (see `failure`)."""
        with self._lock:
            return self._total

    def failure(self, since: int) -> str | None:
        """Why workers cannot start, once `limit` worker jobs in a row failed to start since
        `mark` returned `since`; else None."""
        with self._lock:
            if min(self._in_a_row, self._total - since) < self.limit:
                return None
            return (
                f"{self._in_a_row} worker jobs in a row failed before their Dask worker started "
                f"(check cluster.slurm.python, prologue and modules): last, {self._last}"
            )


def joined_jobs(jobs: Iterable[str], scheduler_info: dict[str, Any]) -> list[str]:
    """The worker jobs (by spec name) with a worker connected to the scheduler now; a job of
    several processes names its workers `<name>-<i>`."""
    names = {str(w.get("name")) for w in scheduler_info.get("workers", {}).values()}
    prefixes = {n.rsplit("-", 1)[0] for n in names}
    return [job for job in jobs if job in names or job in prefixes]


async def stderr_tail(slurm: SlurmCommands, path: str) -> str:
    """The end of a worker job's stderr file on the cluster ("" when it cannot be read)."""
    try:
        result = await slurm.transport.run(["tail", "-c", str(STDERR_TAIL), path], check=False)
    except Exception:  # the head node briefly unreachable: the reason goes without it
        return ""
    return str(result.stdout) if result.exit_status == 0 else ""
