"""Batch steps: each task a SLURM job of its own (an MPI simulation with `srun`, say).

A submission is always one job array (one task or many): the per-task scripts go to a
folder on the cluster in one command, and a small driver script runs task `i` of the array.
Every task writes its exit status to a file, so its outcome is known even where SLURM
accounting is off. States of every tracked job come from one query per poll.
"""

from __future__ import annotations

import base64
import shlex
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cluster.errors import UnsafeDirective
from cluster.settings import SlurmSettings
from cluster.slurm.commands import JobStatus, SlurmCommands
from cluster.slurm.states import JobState

TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class BatchJob:
    name: str  # the job name; also its folder under <work_dir>/batch
    scripts: Sequence[str]  # array task i runs scripts[i]
    output_dirs: Sequence[str]  # where task i writes its outputs (result.json) on the cluster
    options: Sequence[str] = ()  # sbatch options: --nodes=2, --ntasks=4, ...
    array_parallelism: int | None = None
    prologue: Sequence[str] = ()


@dataclass
class PollResult:
    started: list[str] = field(default_factory=list)  # job ids seen running for the first time
    ended: list[TaskEnd] = field(default_factory=list)


@dataclass(frozen=True)
class FileDigest:
    """A file a batch task left in its folder on the cluster."""

    path: str
    """Relative to the task's folder."""
    size: int
    sha256: str


@dataclass
class TaskEnd:
    """A tracked job that reached a terminal state, with what it left behind."""

    job_id: str
    status: JobStatus
    exit_code: int | None
    files: dict[str, bytes | None] = field(default_factory=dict)


def driver_script(job: BatchJob, directory: str, partition: str | None) -> str:
    """The array job's script: run task $SLURM_ARRAY_TASK_ID, keep its exit status.

    Raises UnsafeDirective when a directive or prologue line holds a line break (it would
    add shell lines or directives of its own)."""
    d = shlex.quote(directory)
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job.name}"]
    lines += [f"#SBATCH --output={directory}/%a.out", f"#SBATCH --error={directory}/%a.err"]
    throttle = f"%{job.array_parallelism}" if job.array_parallelism else ""
    lines.append(f"#SBATCH --array=0-{len(job.scripts) - 1}{throttle}")
    if partition and not any(o.startswith(("--partition", "-p")) for o in job.options):
        lines.append(f"#SBATCH --partition={partition}")
    lines += [f"#SBATCH {option}" for option in job.options]
    lines += list(job.prologue)
    for line in lines:
        if "\n" in line or "\r" in line:
            raise UnsafeDirective(f"a job script line would span several lines: {line!r}")
    lines += [
        "i=${SLURM_ARRAY_TASK_ID:-0}",
        f'bash {d}/task-"$i".sh',
        "code=$?",
        f'echo "$code" > {d}/exit-"$i".tmp && mv {d}/exit-"$i".tmp {d}/exit-"$i"',
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"


class SlurmBatch:
    """The SLURM batch system as batch steps use it: job arrays submitted, tracked, polled and
    cancelled over the SSH transport (one `sacct` per poll for every tracked job)."""

    def __init__(self, slurm: SlurmCommands, settings: SlurmSettings, work_dir: str):
        self.slurm = slurm
        self.settings = settings
        self.root = f"{work_dir}/batch"
        self._tracked: dict[str, tuple[str, str]] = {}  # job id ("123_4") → folder, outputs
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def directory(self, name: str) -> str:
        return f"{self.root}/{name}"

    def submit(self, job: BatchJob) -> list[str]:
        """Submit one job array; the ids of its tasks, in order. Raises SubmitRejected with
        sbatch's own message."""
        directory = self.directory(job.name)
        files = {f"task-{i}.sh": script.encode() for i, script in enumerate(job.scripts)}
        files["job.sh"] = driver_script(job, directory, self.settings.partition).encode()
        self.slurm.transport.put_files_sync(directory, files)
        options = [f"--account={self.settings.account}"] if self.settings.account else []
        options += [f"--qos={self.settings.qos}"] if self.settings.qos else []
        script = files["job.sh"].decode()
        array_id = self.slurm.submit_sync(script, options)
        ids = [f"{array_id}_{i}" for i in range(len(job.scripts))]
        with self._lock:
            for job_id, output_dir in zip(ids, job.output_dirs, strict=True):
                self._tracked[job_id] = (directory, output_dir)
        return ids

    def max_array_size(self) -> int:
        """The most tasks one job array may have on this cluster (its MaxArraySize)."""
        return self.slurm.max_array_size_sync()

    def find(self, name: str) -> str | None:
        """The array id of a submission made under `name` (for a crash between sbatch and
        recording its id)."""
        for delay in (0.0, 1.0, 2.0, 4.0):  # a job that already ended may lag in accounting
            time.sleep(delay)
            found = self.slurm.find_by_name(name)
            if found:
                return found[-1]
        return None

    def track(self, job_id: str, name: str, output_dir: str) -> None:
        """Follow a job submitted earlier (a resumed campaign re-attaches to its jobs)."""
        with self._lock:
            self._tracked[job_id] = (self.directory(name), output_dir)

    def forget(self, job_ids: Iterable[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                self._tracked.pop(job_id, None)
                self._running.discard(job_id)

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        self.forget(ids)
        self.slurm.cancel_sync(ids)

    def throttle(self, array_ids: Iterable[str], limit: int) -> dict[str, str]:
        """At most `limit` tasks of each of these queued job arrays run at once; {array id:
        SLURM's message} for those it refused (ended meanwhile, say)."""
        return self.slurm.throttle_arrays_sync(array_ids, limit)

    def poll(self) -> PollResult:
        """Tracked jobs that started or ended since the last poll: one state query, and one
        read of what the ended ones left (exit status, log tails, result.json)."""
        with self._lock:
            tracked = dict(self._tracked)
        if not tracked:
            return PollResult()
        states = self.slurm.states_sync(tracked)
        ended: list[tuple[str, JobStatus]] = []
        started: list[str] = []
        for job_id in tracked:
            status = states.get(job_id)
            if status is not None and status.state is JobState.RUNNING:
                if job_id not in self._running:
                    self._running.add(job_id)
                    started.append(job_id)
            elif status is not None and status.state.terminal:
                ended.append((job_id, status))
            elif status is None and self.slurm.accounting is False:
                # no accounting and gone from squeue: its exit file tells how it ended
                ended.append((job_id, JobStatus(job_id, JobState.UNKNOWN)))
        if not ended:
            return PollResult(started, [])
        paths: list[str] = []
        for job_id, _ in ended:
            (directory, output_dir), index = tracked[job_id], job_id.rsplit("_", 1)[1]
            paths += [f"{directory}/exit-{index}", f"{directory}/{index}.out"]
            paths += [f"{directory}/{index}.err", f"{output_dir}/result.json"]
        contents = self.read_tails(paths)
        out: list[TaskEnd] = []
        for job_id, status in ended:
            (directory, output_dir), index = tracked[job_id], job_id.rsplit("_", 1)[1]
            raw = contents.get(f"{directory}/exit-{index}")
            text = raw.decode(errors="replace").strip() if raw else ""
            code = int(text) if text.lstrip("-").isdigit() else None
            if status.state is JobState.UNKNOWN:
                state = JobState.COMPLETED if code == 0 else JobState.FAILED
                status = JobStatus(job_id, state, code, "ended (no accounting)")
            files = {
                "stdout.log": contents.get(f"{directory}/{index}.out"),
                "stderr.log": contents.get(f"{directory}/{index}.err"),
                "result.json": contents.get(f"{output_dir}/result.json"),
            }
            out.append(TaskEnd(job_id, status, code, files))
        self.forget(job_id for job_id, _ in ended)
        return PollResult(started, out)

    def describe_dirs(self, folders: Sequence[str]) -> dict[str, list[FileDigest]]:
        """Every file under each folder (on the cluster) with its size and SHA-256, in one
        command; a missing folder has no files. Half-written `*.tmp` files are left out."""
        if not folders:
            return {}
        script = (
            'for d in "$@"; do echo "@$d"; [ -d "$d" ] || continue; cd "$d" || continue; '
            "find . -type f ! -name '*.tmp' -exec sh -c "
            '\'for f; do printf "%s " "$(stat -c %s "$f")"; sha256sum "$f"; done\' sh {} +; '
            "cd /; done"
        )
        result = self.slurm.transport.run_sync(["sh", "-c", script, "sh", *folders])
        found: dict[str, list[FileDigest]] = {folder: [] for folder in folders}
        current: list[FileDigest] | None = None
        for line in result.stdout.splitlines():
            if line.startswith("@"):
                current = found.setdefault(line[1:], [])
                continue
            size, _, rest = line.partition(" ")
            digest, _, path = rest.partition("  ")
            if current is None or not size.isdigit() or not path.startswith("./"):
                continue
            current.append(FileDigest(path[2:], int(size), digest.lstrip("\\")))
        return found

    def read_tails(self, paths: Sequence[str], limit: int = TAIL_BYTES) -> dict[str, bytes | None]:
        """The last `limit` bytes of each file (None when missing), in one command."""
        if not paths:
            return {}
        script = (
            'for f in "$@"; do if [ -f "$f" ]; then printf "+"; '
            f'tail -c {int(limit)} "$f" | base64 | tr -d "\\n"; else printf "-"; fi; echo; done'
        )
        command = ["sh", "-c", script, "sh", *paths]
        result = self.slurm.transport.run_sync(command)
        lines = result.stdout.splitlines()
        found: dict[str, bytes | None] = {}
        for path, line in zip(paths, lines, strict=False):
            found[path] = base64.b64decode(line[1:]) if line.startswith("+") else None
        return found

    def close(self) -> None:
        with self._lock:
            self._tracked.clear()
