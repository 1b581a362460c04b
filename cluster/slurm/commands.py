"""SLURM's commands on the head node: sbatch (script on stdin), scancel, job states for
many jobs in one `sacct` call (or one `squeue` call where accounting is off), and
`scontrol update … ArrayTaskThrottle` for job arrays already queued, and the cluster's
MaxArraySize (`scontrol show config`, read once)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.errors import RemoteCommandFailed, SlurmError, SubmitRejected
from cluster.slurm.states import JobState, from_slurm

if TYPE_CHECKING:  # asyncssh's import is not paid by a service whose compute is local
    from cluster.ssh import SSHTransport

_FIELDS = "JobID,State,ExitCode,Reason"
DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's own default, when its configuration does not say
_MAX_ARRAY_SIZE = re.compile(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", re.MULTILINE)
_RANGE = re.compile(r"^(?P<job>\d+)_\[(?P<spec>[^\]]+)\]$")


@dataclass(frozen=True)
class JobStatus:
    job_id: str  # "123", or "123_4" for a task of a job array
    state: JobState
    exit_code: int | None = None
    reason: str = ""


class SlurmCommands:
    def __init__(self, transport: SSHTransport, partition: str | None = None):
        self.transport = transport
        self.partition = partition
        self.accounting: bool | None = None  # found out on the first state query
        # the most tasks in one job array: read from the cluster on first use (or set)
        self.max_array_size: int | None = None

    async def submit(self, script: str, options: Sequence[str] = ()) -> str:
        """Submit a job script; its id. sbatch's own message when it refuses."""
        try:
            result = await self.transport.run(
                ["sbatch", "--parsable", *options], input=script, retry=False
            )
        except RemoteCommandFailed as exc:
            raise SubmitRejected(f"sbatch rejected the job: {exc.stderr.strip() or exc}") from exc
        return parse_job_id(result.stdout)

    def submit_sync(self, script: str, options: Sequence[str] = ()) -> str:
        try:
            result = self.transport.run_sync(
                ["sbatch", "--parsable", *options], input=script, retry=False
            )
        except RemoteCommandFailed as exc:
            raise SubmitRejected(f"sbatch rejected the job: {exc.stderr.strip() or exc}") from exc
        return parse_job_id(result.stdout)

    async def cancel(self, job_ids: Iterable[str]) -> None:
        ids = sorted(set(job_ids))
        if ids:
            await self.transport.run(["scancel", *ids], check=False)

    def cancel_sync(self, job_ids: Iterable[str]) -> None:
        ids = sorted(set(job_ids))
        if ids:
            self.transport.run_sync(["scancel", *ids], check=False)

    def max_array_size_sync(self) -> int:
        """The cluster's MaxArraySize, from `scontrol show config` the first time."""
        if self.max_array_size is None:
            result = self.transport.run_sync(["scontrol", "show", "config"], check=False)
            found = parse_max_array_size(result.stdout)
            self.max_array_size = DEFAULT_MAX_ARRAY_SIZE if found is None else found
        return self.max_array_size

    def throttle_arrays_sync(self, array_ids: Iterable[str], limit: int) -> dict[str, str]:
        """At most `limit` tasks of each job array run at once (`scontrol update`), one
        command for all of them; {array id: SLURM's message} for those it refused (an
        array that has ended, say)."""
        ids = sorted({i for i in array_ids if i.isdigit()}, key=int)
        if not ids:
            return {}
        script = (
            'n="$1"; shift; for j in "$@"; do '
            'if ! out=$(scontrol update JobId="$j" ArrayTaskThrottle="$n" 2>&1); then '
            """printf '%s|%s\\n' "$j" "$(printf '%s' "$out" | tr '\\n' ' ')"; fi; done"""
        )
        result = self.transport.run_sync(
            ["sh", "-c", script, "sh", str(int(limit)), *ids], check=False
        )
        return parse_refused(result.stdout)

    async def states(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        """States of jobs (and of every task of the arrays among them): one command."""
        ids = _base_ids(job_ids)
        if not ids:
            return {}
        if self.accounting is not False:
            result = await self.transport.run(_sacct(ids), check=False)
            if result.exit_status == 0:
                self.accounting = True
                return parse_sacct(result.stdout)
            if "accounting" not in result.stderr.lower():
                raise SlurmError(f"sacct failed: {result.stderr.strip()}")
            self.accounting = False
        result = await self.transport.run(_squeue(ids), check=False)
        return parse_squeue(result.stdout)

    def states_sync(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        return self.transport.call_sync(self.states(job_ids))

    def find_by_name(self, name: str) -> list[str]:
        """Ids of jobs submitted under `name` (after a crash): in the queue now, or in the
        last 30 days of accounting (which may lag the queue by a moment)."""
        quoted = shlex.quote(f"--name={name}")
        result = self.transport.run_sync(
            f"squeue -h {quoted} -o %F; sacct -n -P -X -S now-30days {quoted} -o JobID"
            " 2>/dev/null; true"
        )
        ids = {line.split("_")[0] for line in result.stdout.split() if line.strip()}
        return sorted((i for i in ids if i.isdigit()), key=int)


def parse_job_id(stdout: str) -> str:
    """`sbatch --parsable` prints `id` or `id;cluster`."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id: {stdout.strip()!r}")
    return job_id


def parse_max_array_size(stdout: str) -> int | None:
    """MaxArraySize from `scontrol show config` (`MaxArraySize = 1001`); None if absent."""
    match = _MAX_ARRAY_SIZE.search(stdout)
    return int(match[1]) if match else None


def parse_refused(stdout: str) -> dict[str, str]:
    """`id|message` lines (the arrays `scontrol update` refused) → {id: message}."""
    refused: dict[str, str] = {}
    for line in stdout.splitlines():
        job_id, sep, message = line.strip().partition("|")
        if sep and job_id.isdigit():
            refused[job_id] = message.strip()
    return refused


def parse_sacct(stdout: str) -> dict[str, JobStatus]:
    found: dict[str, JobStatus] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 3 or not parts[0]:
            continue
        job_id, state_text, exit_text = parts[0], parts[1], parts[2]
        reason = parts[3] if len(parts) > 3 else ""
        state = from_slurm(state_text)
        code = _exit_code(exit_text)
        detail = reason if reason not in ("", "None") else state_text
        for one in _expand(job_id):
            found[one] = JobStatus(one, state, code, detail)
    return found


def parse_squeue(stdout: str) -> dict[str, JobStatus]:
    found: dict[str, JobStatus] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 2:
            continue
        for one in _expand(parts[0].strip()):
            found[one] = JobStatus(
                one, from_slurm(parts[1]), None, parts[2] if len(parts) > 2 else ""
            )
    return found


def _expand(job_id: str) -> list[str]:
    """`123_[0-3,7%2]` (the pending tasks of an array) → `123_0` … `123_3`, `123_7`."""
    match = _RANGE.match(job_id)
    if not match:
        return [job_id]
    spec = match["spec"].split("%", 1)[0]
    out: list[str] = []
    for part in spec.split(","):
        if "-" in part:
            start, stop = part.split("-", 1)
            out += [f"{match['job']}_{i}" for i in range(int(start), int(stop) + 1)]
        elif part.isdigit():
            out.append(f"{match['job']}_{part}")
    return out


def _exit_code(text: str) -> int | None:
    head = text.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def _base_ids(job_ids: Iterable[str]) -> list[str]:
    return sorted({job_id.split("_", 1)[0] for job_id in job_ids if job_id})


def _sacct(ids: list[str]) -> list[str]:
    return ["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", _FIELDS]


def _squeue(ids: list[str]) -> list[str]:
    return ["squeue", "-h", "-r", "-j", ",".join(ids), "-o", "%i|%T|%r"]
