"""Runs one campaign on a Dask client: lazy windows of points, futures, retries, durability.

Guarantees (see docs/reliability.md):
- every state change is recorded in the store (batched), and a finished task is reported
  (progress, manifest) only after it is committed;
- tasks recorded as finished are never run again; tasks in flight when the runner died run
  again (at-least-once);
- downstream tasks of a failed task are held, never run; `restart` runs them later.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distributed import Client

from cluster.compute import Compute
from cluster.errors import ClusterConfigError, ClusterError
from orchestrator.engine.batch import BatchSteps
from orchestrator.engine.execute import TaskCall, execute_task
from orchestrator.engine.exports import ExportConfig, Exports
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.plan import StepPlan, compile_plan
from orchestrator.engine.provenance import campaign_payload, task_payload, used_refs
from orchestrator.engine.recorder import Recorder
from orchestrator.engine.slots import HELD, Counts, Slot
from orchestrator.engine.started import StartedRouter
from orchestrator.errors import CampaignBusy, OrchestratorError, SpecError
from orchestrator.results import ResultsLocation
from orchestrator.spec import add_import_paths, parse_document
from orchestrator.states import CampaignState, TaskState
from orchestrator.store import (
    SINGLE,
    Control,
    EventWrite,
    Store,
    TaskRecord,
    TaskWrite,
    runner_identity,
)

logger = logging.getLogger(__name__)

_DONE = frozenset({"finished", "error", "cancelled"})
SCAN_MISSES = 64  # unfinished futures in a row that end a partial scan of `inflight`
FULL_SCAN_INTERVAL = 0.25  # seconds between scans of every in-flight future
Progress = Callable[[dict[str, dict[str, int]]], None]


@dataclass
class EngineConfig:
    max_in_flight: int = 2000
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    control_interval: float = 0.5
    lease_seconds: float = 30.0
    flush_interval: float = 0.05
    store_limit: int = 65536
    inline_limit: int = 1 << 20
    timeout_grace: float = 30.0
    chunk: int = 2000
    collect_linger: float = 0.02
    batch_poll_interval: float = 2.0
    upload_deadline: float = 300.0
    upload_block_size: int = 16 << 20
    provenance: bool = True  # write knowledge-graph registrations to the store's outbox
    export: ExportConfig | None = None  # FSx exports of results on the cluster's Lustre


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
        self._started: deque[dict[str, Any]] = deque()
        self._stop = threading.Event()

    # ------------------------------------------------------------- lifecycle
    def run(self) -> str:
        """Run to the end (or until cancelled); returns the campaign's final state."""
        holder = self.store.claim(self.campaign_id, self.runner, self.config.lease_seconds)
        if holder is not None:
            raise CampaignBusy(self.campaign_id, holder)
        self.import_paths = tuple(self.record.import_paths or ())
        add_import_paths(self.import_paths)
        try:
            try:
                self.plan = compile_plan(parse_document(self.record.spec))
                self.step_resources = self._placement()
            except SpecError as exc:
                self.store.set_campaign_state(
                    self.campaign_id, CampaignState.FAILED, f"spec no longer valid: {exc}"
                )
                return CampaignState.FAILED
            except ClusterConfigError as exc:
                self.store.set_campaign_state(self.campaign_id, CampaignState.FAILED, str(exc))
                return CampaignState.FAILED
            self._prepare()
            try:
                if not self._loop():
                    return CampaignState.RUNNING  # stopped: resumable, nothing lost
                return self._finish()
            finally:
                StartedRouter.of(self.client).remove(self.campaign_id)
                self.recorder.close()
                self.location.flush_manifest(self.config.upload_deadline)
        finally:
            self.store.release(self.campaign_id, self.runner)

    def _placement(self) -> dict[str, dict[str, float] | None]:
        """Dask resources per step; batch steps need a batch system."""
        placement: dict[str, dict[str, float] | None] = {}
        for name, plan in self.plan.steps.items():
            step = plan.step
            if step.kind == "batch":
                if self.compute is None or self.compute.batch is None:
                    kind = self.compute.kind if self.compute is not None else "none"
                    raise ClusterConfigError(
                        f"steps.{name} is a batch step, which needs a batch system: set "
                        f"ORCHESTRATOR_CLUSTER__KIND=slurm (this cluster is {kind!r})"
                    )
                continue
            if self.compute is not None:
                try:
                    placement[name] = self.compute.task_resources(step.resources.model_dump())
                except ClusterConfigError as exc:
                    raise ClusterConfigError(f"steps.{name}.resources: {exc}") from exc
        return placement

    def _prepare(self) -> None:
        plan, cid = self.plan, self.campaign_id
        self.recorder = Recorder(
            self.store, cid, self._durable, interval=self.config.flush_interval
        )
        totals = {name: plan.total(name) for name in plan.steps}
        self.counts = Counts(totals, self.store.task_counts(cid))
        self.active: dict[int, dict[str, Slot]] = {}
        self.parked: set[int] = set()
        self.readmit: deque[int] = deque()
        self.next_point = 0
        self.max_stored_point = self.store.max_point(cid)
        self._rows: dict[tuple[str, int], TaskRecord] = {}
        self._rows_until = 0
        self.singles = {name: Slot(name, SINGLE) for name in plan.single_steps}
        for row in self.store.single_tasks(cid):
            if row.step in self.singles:
                self.singles[row.step] = self._slot_from_row(row.step, SINGLE, row)
        self.gather_refs: dict[str, list[Any]] = {
            name: [None] * plan.points
            for name in plan.foreach_steps
            if plan.gathered_by_someone(name)
        }
        self.inflight: dict[Any, Slot] = {}  # Dask key → slot, in submission order
        self._next_full_scan = 0.0
        batch_runner = self.compute.batch if self.compute is not None else None
        self.batch = (
            BatchSteps(
                batch_runner,
                self.client,
                cid,
                self.location,
                self.config.store_limit,
                self.config.batch_poll_interval,
            )
            if batch_runner is not None
            else None
        )
        self.retries: list[tuple[float, int, Slot]] = []
        self._retry_seq = 0
        self.to_submit: dict[str, list[tuple[Slot, dict[str, Any]]]] = {}
        self.cancelling = False
        self.cancelled_steps: set[str] = set()
        # a finished task's output files, until its manifest line is written
        self.outputs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        self.cancelled_points: set[int] = set()
        self.cancelled_tasks: set[tuple[str, int]] = set()
        self._control_after = 0
        self._next_control = 0.0
        self._next_heartbeat = time.time() + self.config.lease_seconds / 3
        StartedRouter.of(self.client).add(cid, self._started.append)
        self.exports: Exports | None = None
        export = self.config.export
        if export is not None and export.covers(self.location.cluster_path):
            assert self.location.cluster_path is not None
            history = self.store.events(cid, kind="export", limit=10**6)
            self.exports = Exports(export, cid, self.location.cluster_path, self.recorder, history)
        # steps whose every task ended (exported once each, as they end)
        self.ended_steps = (
            {name for name in plan.steps if self._step_ended(name)} if self.exports else set()
        )
        if self.record.state != CampaignState.RUNNING:
            self.recorder.campaign_state(CampaignState.RUNNING)
            if self.config.provenance:
                self.recorder.register(
                    "campaign", campaign_payload(self.record, CampaignState.RUNNING)
                )
        self._poll_controls()

    def stop(self) -> None:
        """Ask the loop to stop soon, leaving the campaign to be resumed (service shutdown)."""
        self._stop.set()

    def _loop(self) -> bool:
        """True when the campaign ended, False when stopped on request."""
        while True:
            if self._stop.is_set():
                self.recorder.flush()
                return False
            now = time.time()
            if now >= self._next_control:
                self._poll_controls()
                self._check_deadlines(now)
            if now >= self._next_heartbeat:
                self._heartbeat()
            if not self.cancelling:
                self._release_retries(now)
                self._admit()
                self._advance_singles()
            self._submit()
            self.recorder.snapshot(self.counts.snapshot())
            if self._done():
                return True
            if self.recorder.error is not None:
                self.recorder.flush()  # raises: the store is gone, stop running blind
            self._collect(self._wait_timeout(now))
            self._mark_started()

    def _done(self) -> bool:
        if self.inflight or self.to_submit or (self.batch and self.batch.inflight):
            return False
        if self.cancelling:
            return True
        if self.readmit or any(entry[2].waiting for entry in self.retries):
            return False
        if self.next_point < self.plan.points or self.active:
            return False
        return all(slot.resolved for slot in self.singles.values())

    def _wait_timeout(self, now: float) -> float:
        deadline = self._next_control
        if self.retries:
            deadline = min(deadline, self.retries[0][0])
        return max(0.0, min(deadline - now, 0.5))

    def _step_ended(self, step: str) -> bool:
        ended = sum(self.counts.get(step, s) for s in ("succeeded", "failed", "cancelled"))
        return ended >= self.plan.total(step)

    def _check_step_ended(self, step: str) -> None:
        if self.exports is not None and step not in self.ended_steps and self._step_ended(step):
            self.ended_steps.add(step)
            self.exports.after_step(step)

    def _export_at_end(self) -> list[str]:
        """Every result durable in the store and the manifest, then exported to S3."""
        if self.exports is None:
            return []
        self.recorder.flush()
        self.location.flush_manifest(self.config.upload_deadline)
        return self.exports.at_end(self._heartbeat, self.config.lease_seconds / 3)

    def _finish(self) -> str:
        by_state = {
            state: sum(self.counts.get(step, state) for step in self.plan.steps)
            for state in ("failed", "cancelled", HELD)
        }
        export_failures = self._export_at_end()
        if self.cancelling:
            final, message = CampaignState.CANCELLED, "cancelled on request"
        elif by_state["failed"]:
            final = CampaignState.FAILED
            message = f"{by_state['failed']} task(s) failed"
            if by_state[HELD]:
                message += f"; {by_state[HELD]} downstream task(s) held"
        elif by_state["cancelled"]:
            final, message = CampaignState.CANCELLED, f"{by_state['cancelled']} task(s) cancelled"
        else:
            final, message = CampaignState.SUCCEEDED, None
        if export_failures:
            more = f" (and {len(export_failures) - 1} more)" if len(export_failures) > 1 else ""
            failed = f"export to S3 failed: {export_failures[0]}{more}"
            if final == CampaignState.SUCCEEDED:
                final, message = CampaignState.FAILED, failed
            else:
                message = f"{message}; {failed}"
        self.recorder.campaign_state(final, message)
        if self.config.provenance:
            self.recorder.register("campaign", campaign_payload(self.record, final, ended=True))
        self.recorder.snapshot(self.counts.snapshot())
        self.recorder.flush()
        if self.store.get_campaign(self.campaign_id).points > self.plan.points:
            # points were added in the instant it ended: run again for them
            self.store.reopen(
                self.campaign_id, self.plan.rerun_on_extend(), "reopened: points added as it ended"
            )
            return CampaignState.ACCEPTED
        return final

    # ------------------------------------------------------------- admission
    def _admit(self) -> None:
        window = self.config.max_in_flight
        while self.readmit and len(self.active) - len(self.parked) < window:
            point = self.readmit.popleft()
            self.parked.discard(point)
            if point in self.active:
                self._advance_point(point)
        foreach = self.plan.foreach_steps
        while (
            foreach
            and self.next_point < self.plan.points
            and len(self.active) - len(self.parked) < window
        ):
            point = self.next_point
            self.next_point += 1
            slots = {step: self._initial_slot(step, point) for step in foreach}
            self.active[point] = slots
            self._advance_point(point)
        if not foreach:
            self.next_point = self.plan.points

    def _initial_slot(self, step: str, point: int) -> Slot:
        row = self._stored_row(step, point)
        slot = self._slot_from_row(step, point, row) if row else Slot(step, point)
        if not slot.resolved and self._is_cancelled(step, point):
            self._cancel_slot(slot)
        return slot

    def _stored_row(self, step: str, point: int) -> TaskRecord | None:
        if point > self.max_stored_point:
            return None
        if point >= self._rows_until:
            start, stop = point, point + self.config.chunk
            self._rows = {
                (r.step, r.point): r
                for r in self.store.tasks_in_range(self.campaign_id, start, stop)
                if r.point is not None
            }
            self._rows_until = stop
        return self._rows.get((step, point))

    def _slot_from_row(self, step: str, point: int, row: TaskRecord) -> Slot:
        slot = Slot(step, point, state=row.state, attempt=row.attempt, job_ref=row.job_id)
        if row.job_id and row.state in ("queued", "running"):
            slot.reattach = self.plan.steps[step].step.kind == "batch"
        if row.state == TaskState.SUCCEEDED:
            slot.outcome = Outcome.from_record(row.result, row.result_url)
            if step in self.gather_refs and point >= 0:
                self.gather_refs[step][point] = slot.outcome
        return slot

    def _is_cancelled(self, step: str, point: int) -> bool:
        return (
            step in self.cancelled_steps
            or point in self.cancelled_points
            or (step, point) in self.cancelled_tasks
        )

    def _advance_point(self, point: int) -> None:
        """Submit what is ready, hold/cancel what cannot run; retire the finished point."""
        slots = self.active[point]
        waiting_on_single = False
        for name in self.plan.foreach_steps:
            slot = slots[name]
            if slot.state not in ("pending", "queued", "running") or slot.future is not None:
                continue
            if slot.waiting:
                continue
            verdict = self._upstream_verdict(
                [slots[u] for u in self.plan.steps[name].pointwise]
                + [self.singles[b] for b in self.plan.steps[name].broadcast]
            )
            if verdict == "ready":
                upstream = {u: slots[u].ref for u in self.plan.steps[name].pointwise}
                upstream.update({b: self.singles[b].ref for b in self.plan.steps[name].broadcast})
                self._queue(slot, upstream)
            elif verdict == "held":
                self._move(slot, HELD)
            elif verdict == "cancelled":
                self._cancel_slot(slot)
            elif any(not self.singles[b].resolved for b in self.plan.steps[name].broadcast):
                waiting_on_single = True
        if all(slot.resolved for slot in slots.values()):
            del self.active[point]
            self.parked.discard(point)
        elif waiting_on_single and not any(
            s.future is not None or s.state == "queued" for s in slots.values()
        ):
            self.parked.add(point)

    def _upstream_verdict(self, upstream: list[Slot]) -> str:
        verdict = "ready"
        for slot in upstream:
            if slot.state in ("failed", HELD):
                return "held"
            if slot.state == "cancelled":
                verdict = "cancelled"
            elif slot.state != "succeeded" and verdict == "ready":
                verdict = "wait"
        return verdict

    def _advance_singles(self) -> None:
        for name in self.plan.single_steps:
            slot = self.singles[name]
            if slot.resolved or slot.future is not None or slot.waiting:
                continue
            if name in self.cancelled_steps:
                self._cancel_slot(slot)
                continue
            step = self.plan.steps[name]
            verdict = self._upstream_verdict([self.singles[b] for b in step.broadcast])
            for g in step.gathered:
                if self.counts.get(g, "failed") or self.counts.get(g, HELD):
                    verdict = "held"
                elif (
                    self.counts.get(g, "succeeded") + self.counts.get(g, "cancelled")
                    < self.plan.points
                ) and verdict == "ready":
                    verdict = "wait"
            if verdict == "ready":
                upstream: dict[str, Any] = {b: self.singles[b].ref for b in step.broadcast}
                upstream.update({g: list(self.gather_refs[g]) for g in step.gathered})
                self._queue(slot, upstream)
            elif verdict == "held":
                self._move(slot, HELD)
            elif verdict == "cancelled":
                self._cancel_slot(slot)

    def _on_single_resolved(self) -> None:
        """Parked points may now go on; they re-enter the window as it has room."""
        queued = set(self.readmit)
        self.readmit.extend(p for p in sorted(self.parked) if p not in queued)

    # ------------------------------------------------------------ submission
    def _queue(self, slot: Slot, upstream: dict[str, Any]) -> None:
        if slot.reattach:
            slot.reattach = False
            if self.batch is not None and self.batch.attach(slot):
                self.recorder.event(
                    EventWrite(
                        time.time(),
                        "task",
                        slot.step,
                        _public(slot.point),
                        slot.state,
                        slot.attempt,
                        f"re-attached to SLURM job {slot.future}",
                    )
                )
                return
        slot.job_ref = None
        slot.attempt += 1
        slot.queued_at = time.time()
        self._move(slot, TaskState.QUEUED, attempt_note=True)
        self.to_submit.setdefault(slot.step, []).append((slot, upstream))

    def _submit(self) -> None:
        pending, self.to_submit = self.to_submit, {}
        for step, batch in pending.items():
            plan = self.plan.steps[step]
            if plan.step.kind == "batch":
                self._submit_batch(plan, batch)
                continue
            calls = [self._call(plan.name, slot) for slot, _ in batch]
            keys = [f"{step}-{self.campaign_id}-{slot.point}-{slot.attempt}" for slot, _ in batch]
            futures = self.client.map(
                execute_task,
                calls,
                [up for _, up in batch],
                key=keys,
                pure=False,
                resources=self.step_resources.get(step),
            )
            for (slot, _), future in zip(batch, futures, strict=True):
                slot.future = future
                self.inflight[future.key] = slot

    def _submit_batch(self, plan: StepPlan, batch: list[tuple[Slot, dict[str, Any]]]) -> None:
        assert self.batch is not None
        entries = [
            (slot, self.plan.sweep.point(slot.point) if slot.point != SINGLE else {}, up)
            for slot, up in batch
        ]
        try:
            self.batch.submit(plan, entries, self._note_jobs)
        except (ClusterError, OrchestratorError) as exc:
            now = time.time()
            for slot, _ in batch:
                slot.future = None
                self._on_outcome(slot, Outcome(ok=False, error=str(exc), finished_at=now))

    def _note_jobs(self, slots: list[Slot]) -> None:
        """Commit the slots' job references now (before and after sbatch)."""
        for slot in slots:
            self._move(slot, slot.state, quiet=True)
        self.recorder.flush()

    def _call(self, name: str, slot: Slot) -> TaskCall:
        plan = self.plan.steps[name]
        step = plan.step
        point = None if slot.point == SINGLE else slot.point
        return TaskCall(
            campaign_id=self.campaign_id,
            step=name,
            kind="command" if step.kind == "command" else "run",
            target=str(step.command if step.kind == "command" else step.run),
            point=point,
            attempt=slot.attempt,
            results_url=self.location.base_url,
            parameters=self.plan.sweep.point(slot.point) if point is not None else {},
            with_=dict(step.with_),
            pass_params=plan.pass_params,
            pass_ctx=plan.pass_ctx,
            timeout=step.timeout,
            store_limit=self.config.store_limit,
            inline_limit=self.config.inline_limit,
            import_paths=self.import_paths,
            upload_deadline=self.config.upload_deadline,
            upload_block_size=self.config.upload_block_size,
        )

    # ------------------------------------------------------------ completion
    def _collect(self, timeout: float) -> None:
        """Handle every future that finished, waiting up to `timeout` for the first.

        Polls the futures' states (local attributes the client keeps current) every
        `collect_linger`: cheaper than a callback per future, and it batches the gather,
        which costs a round trip to the scheduler.
        """
        deadline = time.time() + timeout
        while True:
            mine = self._finished_futures()
            remaining = deadline - time.time()
            waiting_on_jobs = self.batch is not None and bool(self.batch.inflight)
            if mine or remaining <= 0 or not (self.inflight or waiting_on_jobs):
                break
            time.sleep(min(self.config.collect_linger, remaining))
        self._collect_batch()
        if not mine:
            return
        finished = [f for f in mine if f.status == "finished"]
        outcomes = self.client.gather(finished, errors="raise") if finished else []
        for future, outcome in zip(finished, outcomes, strict=True):
            self._on_outcome(self.inflight.pop(future.key), outcome)
        for future in mine:
            if future.status == "finished":
                continue
            slot = self.inflight.pop(future.key)
            if future.status == "cancelled":
                error = "the task's Dask future was cancelled (scheduler or worker lost)"
            else:
                exc = future.exception()
                error = f"{type(exc).__name__}: {exc}"
            self._on_outcome(slot, Outcome(ok=False, error=error, finished_at=time.time()))

    def _finished_futures(self) -> list[Any]:
        """The in-flight futures that are done. Tasks finish roughly in the order they were
        submitted (`inflight` keeps that order), so most scans stop after a run of
        `SCAN_MISSES` unfinished futures instead of reading every one; a full scan every
        `FULL_SCAN_INTERVAL` catches a task that finished out of order."""
        now = time.monotonic()
        full = now >= self._next_full_scan
        if full:
            self._next_full_scan = now + FULL_SCAN_INTERVAL
        found = []
        misses = 0
        for slot in self.inflight.values():
            future = slot.future
            if future is None:
                continue
            if future.status in _DONE:
                found.append(future)
                misses = 0
            elif not full:
                misses += 1
                if misses >= SCAN_MISSES:
                    break
        return found

    def _collect_batch(self) -> None:
        if self.batch is None:
            return
        started, ended = self.batch.poll(time.time())
        for slot in started:
            if slot.state == TaskState.QUEUED:
                slot.started_at = time.time()
                self._move(slot, TaskState.RUNNING, worker=f"slurm:{slot.future}")
        for slot, outcome in ended:
            self._on_outcome(slot, outcome)

    def _on_outcome(self, slot: Slot, outcome: Outcome) -> None:
        if slot.state == "cancelled":
            return
        if slot.started_at is None:
            slot.started_at = outcome.started_at
        if slot.state == TaskState.QUEUED and outcome.started_at is not None:
            # finished before its 'started' message arrived: record the running state too
            self._move(slot, TaskState.RUNNING, worker=outcome.worker)
        if outcome.ok:
            self._succeed(slot, outcome)
        else:
            self._fail(slot, outcome)
        self._check_step_ended(slot.step)
        if slot.point == SINGLE:
            if slot.resolved:
                self._on_single_resolved()
        elif slot.point in self.active:
            self._advance_point(slot.point)

    def _succeed(self, slot: Slot, outcome: Outcome) -> None:
        slot.outcome = outcome
        if self.exports is not None:  # on Lustre: where the export puts each file, too
            for output in outcome.outputs:
                exported = self.exports.exported_url(output["url"])
                if exported is not None:
                    output["exported_url"] = exported
        if slot.step in self.gather_refs:
            self.gather_refs[slot.step][slot.point] = (
                slot.future if slot.future is not None else outcome
            )
        elif not self.plan.steps[slot.step].downstream:
            slot.future = None  # nothing downstream needs it: let the worker drop it
        self._move(slot, TaskState.SUCCEEDED, outcome=outcome)

    def _fail(self, slot: Slot, outcome: Outcome) -> None:
        slot.future = None
        slot.failures += 1
        step = self.plan.steps[slot.step].step
        error = outcome.error or "failed"
        if slot.failures <= step.retries:
            delay = min(
                self.config.retry_backoff * 2 ** (slot.failures - 1),
                self.config.retry_backoff_max,
            ) * random.uniform(0.8, 1.2)
            self.recorder.event(
                EventWrite(
                    time.time(),
                    "task",
                    slot.step,
                    _public(slot.point),
                    TaskState.FAILED,
                    slot.attempt,
                    f"attempt {slot.attempt} failed, retry in {delay:.1f}s: {_last_line(error)}",
                )
            )
            self._retry_seq += 1
            slot.waiting = True
            heapq.heappush(self.retries, (time.time() + delay, self._retry_seq, slot))
            return
        self._move(slot, TaskState.FAILED, outcome=outcome, error=error)

    def _release_retries(self, now: float) -> None:
        """Backoffs that ended: the slots become ready again (cancelled ones stay cancelled)."""
        while self.retries and self.retries[0][0] <= now:
            _, _, slot = heapq.heappop(self.retries)
            slot.waiting = False
            if slot.point != SINGLE and slot.point in self.active:
                self._advance_point(slot.point)  # singles: _advance_singles requeues them

    def _mark_started(self) -> None:
        while self._started:
            msg = self._started.popleft()
            point = SINGLE if msg["p"] is None else msg["p"]
            slot = (
                self.singles.get(msg["s"])
                if point == SINGLE
                else self.active.get(point, {}).get(msg["s"])
            )
            if slot is None or slot.attempt != msg["a"] or slot.state != TaskState.QUEUED:
                continue
            slot.started_at = msg["t"]
            self._move(slot, TaskState.RUNNING, worker=msg.get("w"))

    def _check_deadlines(self, now: float) -> None:
        """The worker enforces `timeout`; this catches a task stuck in C code past it."""
        stuck = [
            slot
            for slot in self.inflight.values()
            if slot.started_at is not None
            and (timeout := self.plan.steps[slot.step].step.timeout) is not None
            # a worker may still be uploading the task's files after its timeout
            and now
            > slot.started_at + timeout + self.config.timeout_grace + self.config.upload_deadline
        ]
        for slot in stuck:
            future = slot.future
            self.inflight.pop(future.key, None)
            self.client.cancel([future])
            self._on_outcome(
                slot,
                Outcome(
                    ok=False,
                    error="TaskTimeout: still running past its timeout; abandoned",
                    finished_at=now,
                ),
            )

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
        old = slot.state
        slot.state = new
        if old != new:
            self.counts.move(slot.step, old, new)
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
            finished_at=now if new in ("succeeded", "failed", "cancelled") else None,
            worker=worker or (outcome.worker if outcome else None),
            error=error,
            job_id=slot.job_ref,
        )
        if outcome is not None and outcome.ok:
            write.result, write.result_url = outcome.stored, outcome.result_url
            self.outputs[(slot.step, slot.point, slot.attempt)] = outcome.outputs
        message = _last_line(error) if error else None
        if new in ("succeeded", "failed") and self.config.provenance:
            used = used_refs(
                self.plan.steps[slot.step], slot, self.active.get(slot.point, {}), self.singles
            )
            self.recorder.register("task", task_payload(slot, write, outcome, used))
        if quiet:  # a detail of the row changed, not its state: no event
            self.recorder.task(write, None)
            return
        self.recorder.task(
            write,
            EventWrite(now, "task", slot.step, _public(slot.point), new, slot.attempt, message),
        )
        if slot.point == SINGLE and slot.resolved:
            self._on_single_resolved()

    def _cancel_slot(self, slot: Slot) -> None:
        if self.batch is not None and isinstance(slot.future, str):
            self.batch.cancel(slot)
        if slot.future is not None:
            self.inflight.pop(slot.future.key, None)
            self.client.cancel([slot.future])
            slot.future = None
        slot.waiting = False  # its backoff entry, if any, is dropped when it comes due
        self._move(slot, TaskState.CANCELLED)

    # -------------------------------------------------------------- controls
    def _poll_controls(self) -> None:
        self._next_control = time.time() + self.config.control_interval
        for control in self.store.active_controls(self.campaign_id, self._control_after):
            self._control_after = control.id
            if control.action == "cancel":
                self._apply_cancel(control)
            elif control.action == "extend":
                self._apply_extend()

    def _apply_cancel(self, control: Control) -> None:
        if control.step is None and control.point is None:
            self.cancelling = True
            for slots in self.active.values():
                for slot in slots.values():
                    if not slot.resolved:
                        self._cancel_slot(slot)
            for slot in self.singles.values():
                if not slot.resolved:
                    self._cancel_slot(slot)
            self.to_submit = {}
            return
        targets: list[Slot] = []
        if control.point is None:
            assert control.step is not None
            steps = {control.step} | self.plan.descendants(control.step)
            self.cancelled_steps |= steps
            targets = [s for slots in self.active.values() for n, s in slots.items() if n in steps]
            targets += [self.singles[n] for n in steps if n in self.singles]
        elif control.step is None:
            self.cancelled_points.add(control.point)
            targets = list(self.active.get(control.point, {}).values())
        else:
            self.cancelled_tasks.add((control.step, control.point))
            found = self.active.get(control.point, {}).get(control.step)
            targets = [found] if found else []
        for slot in targets:
            if not slot.resolved:
                self._cancel_slot(slot)
        for point in {s.point for s in targets if s.point != SINGLE}:
            if point in self.active:
                self._advance_point(point)
        self.to_submit = {
            step: [(s, up) for s, up in batch if s.state != "cancelled"]
            for step, batch in self.to_submit.items()
        }
        self.to_submit = {k: v for k, v in self.to_submit.items() if v}

    def _apply_extend(self) -> None:
        """Points were added (`extend`): take the stored spec's longer sweep; fan-in steps
        run again to see them. Finished points are untouched."""
        record = self.store.get_campaign(self.campaign_id)
        sweep = parse_document(record.spec).make_sweep()
        added = len(sweep) - self.plan.points
        if added <= 0 or self.cancelling:
            return
        self.plan.sweep = sweep
        for name in self.plan.foreach_steps:
            self.counts.grow(name, added)
        for refs in self.gather_refs.values():
            refs.extend([None] * added)
        for name in self.plan.rerun_on_extend():
            slot = self.singles[name]
            if slot.state == "pending" and slot.future is None:
                continue
            if slot.future is not None:
                self.inflight.pop(getattr(slot.future, "key", None), None)
                if self.batch is not None and isinstance(slot.future, str):
                    self.batch.cancel(slot)
                else:
                    self.client.cancel([slot.future])
                slot.future = None
            slot.outcome, slot.waiting = None, False
            self._move(slot, TaskState.PENDING)

    def _heartbeat(self) -> None:
        self._next_heartbeat = time.time() + self.config.lease_seconds / 3
        if not self.store.heartbeat(self.campaign_id, self.runner, self.config.lease_seconds):
            raise CampaignBusy(self.campaign_id, "another runner (this runner's lease was lost)")

    # ------------------------------------------------------------ provenance
    # ------------------------------------------------------------ durability
    def _durable(self, writes: list[TaskWrite], snapshot: Any) -> None:
        """Runs on the recorder's thread once `writes` are committed."""
        entries = [
            self._manifest_entry(w)
            for w in writes
            if w.state in ("succeeded", "failed", "cancelled")
        ]
        if entries:
            try:
                self.location.append_manifest(entries)
            except Exception:
                logger.exception("could not append to the manifest")
        if self.progress is not None and snapshot is not None:
            self.progress(snapshot)

    def _manifest_entry(self, write: TaskWrite) -> dict[str, Any]:
        point = _public(write.point)
        entry: dict[str, Any] = {"step": write.step, "point": point}
        if point is not None:
            entry["parameters"] = self.plan.sweep.point(point)
        entry.update(
            state=write.state,
            attempt=write.attempt,
            result=write.result,
            result_url=write.result_url,
            output=self.location.url(self.location.task_prefix(write.step, point)),
            outputs=self.outputs.pop((write.step, write.point, write.attempt), []),
            finished_at=write.finished_at,
        )
        if write.error:
            entry["error"] = _last_line(write.error)
        return entry


def _public(point: int) -> int | None:
    return None if point == SINGLE else point


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else text[:500]
