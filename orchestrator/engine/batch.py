"""The engine's batch steps: each task a SLURM job of its own, a swept step one job array
(several when it has more tasks than the cluster's MaxArraySize; each is then submitted,
recorded, re-attached and polled as any array is).

Each task's job is noted in the store as `name#index=jobid` (its job_id column), and the
intent `name#index=` is committed before `sbatch` runs: a resumed campaign re-attaches to
jobs it finds that way, whether or not the crash came before sbatch answered, so a point's
job is never submitted twice.
"""

from __future__ import annotations

import json
import logging
import posixpath
import shlex
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distributed import Client, Future

from cluster.errors import ClusterError
from cluster.slurm.batch import BatchJob, PollResult, SlurmBatch, TaskEnd
from cluster.slurm.states import JobState
from orchestrator.engine.execute import render_template
from orchestrator.engine.outcome import Outcome, encode, unwrap
from orchestrator.engine.plan import StepPlan
from orchestrator.engine.slots import Slot
from orchestrator.results import ResultsLocation, StoredFile, media_type
from orchestrator.results.attempts import fresh_task_folder_shell
from orchestrator.spec.model import BatchSpec, Step
from orchestrator.spec.shell_template import as_text
from orchestrator.store import SINGLE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRef:
    name: str
    index: int
    job_id: str | None  # None: the intent, written before sbatch answered

    def __str__(self) -> str:
        return f"{self.name}#{self.index}={self.job_id or ''}"

    @classmethod
    def parse(cls, text: str | None) -> JobRef | None:
        if not text or "#" not in text or "=" not in text:
            return None
        name, rest = text.split("#", 1)
        index, job_id = rest.split("=", 1)
        return cls(name, int(index), job_id or None) if index.isdigit() else None


def sbatch_options(batch: BatchSpec, step: Step) -> list[str]:
    options = [f"--nodes={batch.nodes}"]
    if batch.ntasks:
        options.append(f"--ntasks={batch.ntasks}")
    if batch.cpus_per_task:
        options.append(f"--cpus-per-task={batch.cpus_per_task}")
    elif step.resources.cores > 1:
        options.append(f"--cpus-per-task={step.resources.cores}")
    if batch.partition:
        options.append(f"--partition={batch.partition}")
    if batch.account:
        options.append(f"--account={batch.account}")
    if batch.constraint:
        options.append(f"--constraint={batch.constraint}")
    if batch.exclusive:
        options.append("--exclusive")
    if step.resources.memory:
        options.append(f"--mem={max(1, step.resources.memory // 2**20)}M")
    walltime = step.resources.walltime or step.timeout
    if walltime:
        options.append(f"--time={max(1, int(-(-walltime // 60)))}")
    if step.resources.gpus:
        options.append(f"--gpus-per-node={step.resources.gpus}")
    return options


class BatchSteps:
    def __init__(
        self,
        system: SlurmBatch,
        client: Client,
        campaign_id: str,
        location: ResultsLocation,
        store_limit: int,
        poll_interval: float,
    ):
        self.system = system
        self.client = client
        self.campaign_id = campaign_id
        self.location = location
        self.store_limit = store_limit
        self.poll_interval = poll_interval
        self.inflight: dict[str, Slot] = {}  # job id → slot
        self.parallelism: dict[str, int] = {}  # step → array parallelism (a live throttle)
        self._throttled: dict[str, int] = {}  # array id → the parallelism SLURM was given
        self._next_poll = 0.0
        self._undescribed: list[tuple[Slot, TaskEnd]] = []  # ended, outputs not listed yet

    def output_dir(self, step: str, point: int) -> str:
        """The task's folder on the cluster: in the results themselves when they are a
        cluster path (the task writes its outputs in place), else a work folder."""
        sub = self.location.task_prefix(step, None if point == SINGLE else point)
        if self.location.cluster_path is not None:
            return posixpath.join(self.location.cluster_path, sub)
        return posixpath.join(self.system.root.rsplit("/", 1)[0], "out", self.campaign_id, sub)

    def submit(
        self,
        plan: StepPlan,
        batch: list[tuple[Slot, dict[str, Any], dict[str, Any]]],
        note: Callable[[list[Slot]], None],
    ) -> None:
        """Submit (slot, parameters, upstream) as one job array, or as several when there
        are more tasks than the cluster's MaxArraySize allows in one. `note` commits the
        slots' job references before each sbatch runs. Raises ClusterError when SLURM
        refuses an array: the slots of the arrays submitted before it keep their jobs
        (their `future` is set), the others have none."""
        size = max(1, self.system.max_array_size())
        for start in range(0, len(batch), size):
            self._submit_array(plan, batch[start : start + size], note)

    def _submit_array(
        self,
        plan: StepPlan,
        batch: list[tuple[Slot, dict[str, Any], dict[str, Any]]],
        note: Callable[[list[Slot]], None],
    ) -> None:
        step = plan.step
        assert step.batch is not None
        name = f"orch-{self.campaign_id[:8]}-{uuid.uuid4().hex[:8]}"
        scripts, outputs = [], []
        for slot, parameters, upstream in batch:
            output_dir = self.output_dir(slot.step, slot.point)
            values: dict[str, Any] = {
                **parameters,
                **step.with_,
                **{k: as_text(v) for k, v in self._values(upstream).items()},
                "output_dir": output_dir,
                "point": "" if slot.point == SINGLE else slot.point,
                "attempt": slot.attempt,
                "campaign_id": self.campaign_id,
                "step": slot.step,
            }
            body = render_template(step.batch.script, values)
            scripts.append(_task_script(step.batch, output_dir, body, slot.attempt))
            outputs.append(output_dir)
        for i, (slot, _, _) in enumerate(batch):
            slot.job_ref = str(JobRef(name, i, None))
        note([slot for slot, _, _ in batch])
        job = BatchJob(
            name=name,
            scripts=scripts,
            output_dirs=outputs,
            options=sbatch_options(step.batch, step),
            array_parallelism=self.parallelism.get(plan.name, step.batch.array_parallelism),
            prologue=[f"module load {shlex.quote(m)}" for m in step.batch.modules],
        )
        ids = self.system.submit(job)
        for (slot, _, _), job_id in zip(batch, ids, strict=True):
            slot.job_ref = str(JobRef(name, ids.index(job_id), job_id))
            slot.future = job_id
            self.inflight[job_id] = slot
        note([slot for slot, _, _ in batch])

    def attach(self, slot: Slot) -> bool:
        """Follow the job a crashed run submitted for this slot; False if there is none."""
        ref = JobRef.parse(slot.job_ref)
        if ref is None:
            return False
        job_id = ref.job_id
        if job_id is None:
            found = self.system.find(ref.name)
            if found is None:
                return False
            job_id = f"{found}_{ref.index}"
            slot.job_ref = str(JobRef(ref.name, ref.index, job_id))
        self.system.track(job_id, ref.name, self.output_dir(slot.step, slot.point))
        slot.future = job_id
        self.inflight[job_id] = slot
        if slot.step in self.parallelism:  # throttled while no runner followed its array
            self.throttle(slot.step, self.parallelism[slot.step])
        return True

    def throttle(self, step: str, limit: int) -> dict[str, str]:
        """At most `limit` tasks of each of the step's job arrays at once: those in flight
        now (each told once) and those submitted later. {array id: SLURM's message} for
        the arrays it refused. An unreachable head node is logged; the arrays are told at the
        next throttle, or when a resumed run re-attaches to them."""
        self.parallelism[step] = limit
        arrays = {
            job_id.split("_", 1)[0]
            for job_id, slot in self.inflight.items()
            if slot.step == step and self._throttled.get(job_id.split("_", 1)[0]) != limit
        }
        if not arrays:
            return {}
        try:
            refused = self.system.throttle(arrays, limit)
        except ClusterError as exc:
            logger.warning("could not throttle job arrays %s: %s", sorted(arrays), exc)
            return {}
        self._throttled.update(dict.fromkeys(arrays, limit))
        return refused

    def cancel(self, slot: Slot) -> None:
        job_id = slot.future
        if isinstance(job_id, str):
            self.inflight.pop(job_id, None)
            try:
                self.system.cancel([job_id])
            except ClusterError as exc:
                logger.warning("could not cancel SLURM job %s: %s", job_id, exc)
        slot.future = None

    def poll(self, now: float) -> tuple[list[Slot], list[tuple[Slot, Outcome]]]:
        """(slots whose job started, (slot, outcome) of jobs that ended), at most once per
        poll interval. Jobs whose outputs could not be listed yet (results on the cluster,
        the head node briefly unreachable) stay in flight and are listed at the next poll."""
        if not self.inflight or now < self._next_poll:
            return [], []
        self._next_poll = now + self.poll_interval
        started: list[Slot] = []
        finished = [(s, e) for s, e in self._undescribed if self.inflight.get(e.job_id) is s]
        self._undescribed = []
        if len(finished) < len(self.inflight):  # some jobs may still run: ask SLURM
            try:
                result = self.system.poll()
            except ClusterError as exc:  # the head node may be briefly unreachable
                logger.warning("could not poll batch jobs: %s", exc)
                result = PollResult()
            started = [self.inflight[j] for j in result.started if j in self.inflight]
            finished += [
                (self.inflight[e.job_id], e) for e in result.ended if e.job_id in self.inflight
            ]
        if not finished:
            return started, []
        described = self._describe([slot for slot, _ in finished])
        if described is None:
            self._undescribed = finished
            return started, []
        ended = []
        for slot, end in finished:
            self.inflight.pop(end.job_id, None)
            slot.future = None
            outcome = self._outcome(slot, end)
            if outcome.ok:
                outcome.outputs = described.get(id(slot), [])
            ended.append((slot, outcome))
        return started, ended

    def _describe(self, slots: list[Slot]) -> dict[int, list[dict[str, Any]]] | None:
        """Results on the cluster: each task's files, as the manifest lists outputs (one
        command for all the tasks that ended); None when they could not be listed."""
        if self.location.cluster_path is None or not slots:
            return {}
        folders = {id(slot): self.output_dir(slot.step, slot.point) for slot in slots}
        try:
            found = self.system.describe_dirs(sorted(set(folders.values())))
        except ClusterError as exc:
            logger.warning("could not list the outputs of ended batch tasks (next poll): %s", exc)
            return None
        described = {}
        for slot in slots:
            prefix = self.location.task_prefix(
                slot.step, None if slot.point == SINGLE else slot.point
            )
            described[id(slot)] = [
                StoredFile(
                    path=f.path,
                    url=self.location.url(f"{prefix}/{f.path}"),
                    size=f.size,
                    digest=f"sha256:{f.sha256}",
                    media_type=media_type(f.path),
                ).to_dict()
                for f in found.get(folders[id(slot)], [])
            ]
        return described

    def _outcome(self, slot: Slot, end: TaskEnd) -> Outcome:
        prefix = self.location.task_prefix(slot.step, None if slot.point == SINGLE else slot.point)
        for name in ("stdout.log", "stderr.log"):
            data = end.files.get(name)
            if data:
                try:
                    self.location.write_bytes(f"{prefix}/{name}", data)
                except Exception as exc:
                    logger.warning("could not keep %s of %s: %s", name, end.job_id, exc)
        now = time.time()
        status = end.status
        worker = f"slurm:{end.job_id}"
        if status.state is JobState.COMPLETED and end.exit_code in (0, None):
            raw = end.files.get("result.json")
            try:
                value = json.loads(raw) if raw else None
            except ValueError as exc:
                return Outcome(ok=False, error=f"result.json is not JSON: {exc}", worker=worker)
            stored, data, filename = encode(value, self.store_limit)
            url = self.location.write_bytes(f"{prefix}/{filename}", data) if data else None
            return Outcome(
                ok=True, value=value, stored=stored, result_url=url, finished_at=now, worker=worker
            )
        error = f"SLURM job {end.job_id} {status.state.value}"
        if end.exit_code is not None:
            error += f" with exit code {end.exit_code}"
        if status.reason and status.reason not in ("None",):
            error += f" ({status.reason})"
        tail = (end.files.get("stderr.log") or b"").decode("utf-8", "replace").strip()
        if tail:
            error += "\n" + tail[-2000:]
        return Outcome(ok=False, error=error, finished_at=now, worker=worker)

    def _values(self, upstream: dict[str, Any]) -> dict[str, Any]:
        futures = {k: v for k, v in upstream.items() if isinstance(v, Future)}
        values = dict(upstream)
        if futures:
            values.update(zip(futures, self.client.gather(list(futures.values())), strict=True))
        return {k: unwrap(v) for k, v in values.items()}


def _task_script(batch: BatchSpec, output_dir: str, body: str, attempt: int) -> str:
    """The task's own script: its environment, run in its output folder (emptied of what
    an earlier attempt left there)."""
    lines = ["#!/bin/bash", *fresh_task_folder_shell(output_dir, attempt)]
    lines += [f"cd {shlex.quote(output_dir)} || exit 1"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in batch.env.items()]
    lines += [f"export ORCHESTRATOR_OUTPUT_DIR={shlex.quote(output_dir)}", body]
    return "\n".join(lines) + "\n"
