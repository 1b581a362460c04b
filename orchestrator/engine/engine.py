"""Runs one campaign on a Dask client: lazy windows of points, futures, retries, durability.

Guarantees (see docs/reliability.md):
- every state change is recorded in the store (batched), and a finished task is reported
  (progress, manifest) only after it is committed;
- tasks recorded as finished are never run again; tasks in flight when the runner died run
  again (at-least-once);
- downstream tasks of a failed task are held, never run; `restart` runs them later;
- a run that lost its lease writes nothing more (the store refuses it) and stops.

This module is the core: the run (claim, plan, end state), its loop, and `_move`, the one
place a task changes state. The loop's parts, each given the run's shared `RunState`:
admission (engine/admission.py), submission (engine/submission.py), completion
(engine/completion.py), chunks of points (engine/chunks.py), controls (engine/controls.py),
the manifest and progress reports (engine/manifest.py), FSx exports (engine/exports.py over
orchestrator/results/exports.py); the lease, renewed on its own thread (engine/lease.py),
fences every write of the run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from distributed import Client

from cluster.compute import Compute
from cluster.errors import ClusterConfigError
from orchestrator.engine.admission import Admission
from orchestrator.engine.batch import BatchSteps
from orchestrator.engine.completion import Completion
from orchestrator.engine.config import EngineConfig
from orchestrator.engine.controls import Controls
from orchestrator.engine.ending import final_state
from orchestrator.engine.exports import ExportSchedule
from orchestrator.engine.lease import LeaseKeeper
from orchestrator.engine.manifest import Manifest, Progress
from orchestrator.engine.outcome import Outcome, last_line
from orchestrator.engine.plan import Plan, compile_plan
from orchestrator.engine.provenance import campaign_payload, task_payload, used_refs
from orchestrator.engine.recorder import Recorder
from orchestrator.engine.slots import HELD, Chunk, Counts, Slot
from orchestrator.engine.started import StartedRouter
from orchestrator.engine.state import RunState, task_event
from orchestrator.engine.submission import Submission
from orchestrator.engine.workers import WorkerStartCheck
from orchestrator.errors import CampaignBusy, LeaseLost, SpecError
from orchestrator.results import ResultsLocation
from orchestrator.spec import add_import_paths, parse_document
from orchestrator.spec.validate import check_gathered
from orchestrator.states import TASK_TERMINAL, CampaignState, TaskState
from orchestrator.store import SINGLE, EventWrite, Store, TaskWrite, runner_identity

__all__ = ["Engine", "EngineConfig", "Progress"]


@dataclass
class _Parts:
    """One run's shared state and the parts that work on it (made once the plan is known)."""

    state: RunState
    recorder: Recorder
    manifest: Manifest
    admission: Admission
    submission: Submission
    completion: Completion
    controls: Controls
    exports: ExportSchedule | None
    workers: WorkerStartCheck


class Engine:
    def __init__(
        self,
        store: Store,
        client: Client,
        campaign_id: str,
        config: EngineConfig | None = None,
        progress: Progress | None = None,
        runner: str | None = None,
        compute: Compute | None = None,
    ):
        self.store = store
        self.client = client
        self.campaign_id = campaign_id
        self.config = config or EngineConfig()
        self.progress = progress
        self.runner = runner or runner_identity()
        self.compute = compute
        self.record = store.get_campaign(campaign_id)
        self.location = ResultsLocation(self.record.results_url)
        self.import_paths: tuple[str, ...] = ()
        self._started: deque[dict[str, Any]] = deque()
        self._stop = threading.Event()
        self._lease: LeaseKeeper  # made by `run` once the campaign is claimed
        # made by `run` once the campaign is claimed: compiling the plan imports task code
        self._parts: _Parts | None = None

    @property
    def inflight(self) -> dict[Any, Slot | Chunk]:
        """The tasks submitted to Dask and not yet collected (Dask key → slot or chunk)."""
        return self._parts.state.inflight if self._parts is not None else {}

    # ------------------------------------------------------------- lifecycle
    def run(self) -> str:
        """Run to the end (or until cancelled); returns the campaign's final state."""
        holder = self.store.claim(self.campaign_id, self.runner, self.config.lease_seconds)
        if holder is not None:
            raise CampaignBusy(self.campaign_id, holder)
        self._lease = LeaseKeeper(
            self.store, self.campaign_id, self.runner, self.config.lease_seconds, self._stop.set
        )
        self._lease.start()
        self.import_paths = tuple(self.record.import_paths or ())
        add_import_paths(self.import_paths)
        try:
            try:
                plan = compile_plan(parse_document(self.record.spec))
                check_gathered(plan.spec, self.config.max_gathered_points)
                step_resources = _placement(plan, self.compute)
            except SpecError as exc:
                return self._fail_early(f"spec no longer valid: {exc}")
            except (MemoryError, RecursionError) as exc:  # no retry can fix these
                return self._fail_early(
                    f"the campaign cannot be planned: {type(exc).__name__}: {exc}"
                )
            except ClusterConfigError as exc:
                return self._fail_early(str(exc))
            parts = self._prepare(plan, step_resources)
            try:
                if not self._loop(parts):
                    return CampaignState.RUNNING  # stopped: resumable, nothing lost
                return self._finish(parts)
            finally:
                StartedRouter.of(self.client).remove(self.campaign_id)
                self._close(parts)
        finally:
            self._lease.stop()
            self.store.release(self.campaign_id, self.runner)

    def _fail_early(self, reason: str) -> str:
        self.store.set_campaign_state(
            self.campaign_id, CampaignState.FAILED, reason, runner=self.runner
        )
        return CampaignState.FAILED

    def _close(self, parts: _Parts) -> None:
        """Commit what is recorded and send the manifest; with the lease lost, write nothing
        more (the store would refuse it) and let go of this run's futures."""
        if not (self._lease.lost.is_set() or isinstance(parts.recorder.error, LeaseLost)):
            try:
                parts.recorder.close()
            finally:
                parts.manifest.flush()
            return
        parts.recorder.abandon()
        futures = [slot.future for slot in parts.state.inflight.values() if slot.future]
        if futures:
            self.client.cancel(futures)
        raise LeaseLost(self.campaign_id, self.runner)

    def _prepare(self, plan: Plan, step_resources: dict[str, dict[str, float] | None]) -> _Parts:
        cid, config = self.campaign_id, self.config
        manifest = Manifest(self.location, plan, self.progress, config.upload_deadline)
        manifest.rebuild(self.store, cid)  # lines a crash or an outage lost, from the store
        recorder = Recorder(
            self.store, cid, manifest.durable, interval=config.flush_interval, runner=self.runner
        )
        counts = Counts(
            {name: plan.total(name) for name in plan.steps}, self.store.task_counts(cid)
        )
        batch_system = self.compute.batch if self.compute is not None else None
        batch = (
            BatchSteps(
                batch_system,
                self.client,
                cid,
                self.location,
                config.store_limit,
                config.batch_poll_interval,
            )
            if batch_system is not None
            else None
        )
        state = RunState(
            self.store, self.client, cid, config, self.location, plan, counts, recorder, batch
        )
        admission = Admission(state, self._move)
        admission.load_singles()
        exports = ExportSchedule.create(config.export, state, manifest)
        completion = Completion(state, self._move, admission, exports, self._started)
        chunks = completion.chunks
        StartedRouter.of(self.client).add(cid, self._started.append, chunks.on_report)
        submission = Submission(
            state, self._move, completion.on_outcome, step_resources, self.import_paths, chunks
        )
        controls = Controls(state, self._move, admission)
        parts = _Parts(
            state,
            recorder,
            manifest,
            admission,
            submission,
            completion,
            controls,
            exports,
            WorkerStartCheck(self.compute),
        )
        self._parts = parts
        if self.record.state != CampaignState.RUNNING:
            recorder.campaign_state(CampaignState.RUNNING)
            if config.provenance:
                recorder.register("campaign", campaign_payload(self.record, CampaignState.RUNNING))
        controls.poll()
        return parts

    def stop(self) -> None:
        """Ask the loop to stop soon, leaving the campaign to be resumed (service shutdown)."""
        self._stop.set()

    def _loop(self, parts: _Parts) -> bool:
        """True when the campaign ended, False when stopped on request."""
        state, recorder = parts.state, parts.recorder
        admission, completion, controls = parts.admission, parts.completion, parts.controls
        while True:
            if self._stop.is_set():
                self._lease.check()  # stopped because the lease was lost: say so
                recorder.flush()
                return False
            now = time.time()
            if now >= controls.next_poll:
                controls.poll()
                completion.check_deadlines(now)
                for lost in parts.workers.lost():
                    recorder.event(EventWrite(now, "worker", state="lost", message=lost))
                if state.inflight and (reason := parts.workers.failure()) is not None:
                    state.workers_failed = reason
                    self.client.cancel([s.future for s in state.inflight.values() if s.future])
                    return True
            # new points only while the store keeps up: a backlog of writes would make
            # ever longer transactions, which hold the lease's row past its end
            behind = recorder.backlog >= self.config.max_unwritten
            if not state.cancelling and not behind:
                completion.release_retries(now)
                admission.admit()
                admission.advance_singles()
            elif behind and not state.inflight:
                time.sleep(self.config.flush_interval)  # nothing to collect: wait for it
            self._submit()
            recorder.snapshot(state.counts.snapshot())
            if _done(state):
                return True
            if recorder.error is not None:
                recorder.flush()  # raises: the store is gone, stop running blind
            completion.collect(_wait_timeout(state, controls.next_poll, now))
            completion.mark_started()

    def _submit(self) -> None:
        assert self._parts is not None
        self._parts.submission.submit()

    def _finish(self, parts: _Parts) -> str:
        state, recorder = parts.state, parts.recorder
        counts, plan = state.counts, state.plan
        export_failures = (
            parts.exports.at_end(self._lease.check, 1.0) if parts.exports is not None else []
        )
        recorder.flush()  # every finished task committed, and its manifest line handed over
        manifest_problem = parts.manifest.complete(self.store, self.campaign_id)
        final, message = final_state(state, export_failures, manifest_problem)
        recorder.campaign_state(final, message)
        if self.config.provenance:
            recorder.register("campaign", campaign_payload(self.record, final, ended=True))
        recorder.snapshot(counts.snapshot())
        recorder.flush()
        if self.store.get_campaign(self.campaign_id).points > plan.points:
            # points were added in the instant it ended: run again for them
            self.store.reopen(
                self.campaign_id,
                plan.rerun_on_extend(),
                "reopened: points added as it ended",
                runner=self.runner,
            )
            return CampaignState.ACCEPTED
        return final

    # ------------------------------------------------------- state changes
    def _move(
        self,
        slot: Slot,
        new: str,
        *,
        outcome: Outcome | None = None,
        error: str | None = None,
        worker: str | None = None,
        attempt_note: bool = False,
        quiet: bool = False,
    ) -> None:
        """The one place a task changes state: counts, store row, event, provenance."""
        parts = self._parts
        assert parts is not None
        state, recorder = parts.state, parts.recorder
        old = slot.state
        slot.state = new
        if old != new:
            state.counts.move(slot.step, old, new)
        if new == HELD:
            return  # not a stored state: the task stays pending in the store
        now = time.time()
        write = TaskWrite(
            step=slot.step,
            point=slot.point,
            state=new,
            attempt=slot.attempt,
            queued_at=slot.queued_at,
            started_at=slot.started_at,
            finished_at=now if new in TASK_TERMINAL else None,
            worker=worker or (outcome.worker if outcome else None),
            error=error,
            job_id=slot.job_ref,
        )
        if outcome is not None and outcome.ok:
            write.result, write.result_url = outcome.stored, outcome.result_url
            parts.manifest.outputs[(slot.step, slot.point, slot.attempt)] = outcome.outputs
        message = last_line(error) if error else None
        if new in (TaskState.SUCCEEDED, TaskState.FAILED) and self.config.provenance:
            used = used_refs(
                state.plan.steps[slot.step], slot, state.active.get(slot.point, {}), state.singles
            )
            recorder.register("task", task_payload(slot, write, outcome, used))
        if quiet:  # a detail of the row changed, not its state: no event
            recorder.task(write, None)
            return
        recorder.task(write, task_event(slot, new, message, at=now))
        if slot.point == SINGLE and slot.resolved:
            state.release_parked()


def _placement(plan: Plan, compute: Compute | None) -> dict[str, dict[str, float] | None]:
    """Dask resources per step; batch steps need a batch system."""
    placement: dict[str, dict[str, float] | None] = {}
    for name, step_plan in plan.steps.items():
        step = step_plan.step
        if step.kind == "batch":
            if compute is None or compute.batch is None:
                kind = compute.kind if compute is not None else "none"
                raise ClusterConfigError(
                    f"steps.{name} is a batch step, which needs a batch system: set "
                    f"ORCHESTRATOR_CLUSTER__KIND=slurm (this cluster is {kind!r})"
                )
            continue
        if compute is not None:
            try:
                placement[name] = compute.task_resources(step.resources.model_dump())
            except ClusterConfigError as exc:
                raise ClusterConfigError(f"steps.{name}.resources: {exc}") from exc
    return placement


def _done(state: RunState) -> bool:
    if state.inflight or state.to_submit or (state.batch and state.batch.inflight):
        return False
    if state.cancelling:
        return True
    if state.readmit or any(entry[2].waiting for entry in state.retries):
        return False
    if state.next_point < state.plan.points or state.active:
        return False
    return all(slot.resolved for slot in state.singles.values())


def _wait_timeout(state: RunState, next_poll: float, now: float) -> float:
    deadline = next_poll
    if state.retries:
        deadline = min(deadline, state.retries[0][0])
    return max(0.0, min(deadline - now, 0.5))
