"""Submission: queued tasks become Dask futures (one `client.map` per step) or SLURM jobs.

Guarantees:
- a queued task is submitted once per attempt, under a Dask key unique to its campaign,
  step, point and attempt (the points of a chunked step in chunks: engine/chunks.py);
- a batch task's job reference is committed to the store before `sbatch` runs and again
  after it answers (see engine/batch.py), so a crash in between never submits it twice;
- a batch step that cannot be submitted fails its tasks (retried as any failure is).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cluster.errors import ClusterError
from orchestrator.engine.chunks import Chunks
from orchestrator.engine.execute import TaskCall, execute_task
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.plan import StepPlan
from orchestrator.engine.slots import Slot
from orchestrator.engine.state import Move, RunState, Upstream
from orchestrator.errors import OrchestratorError
from orchestrator.store import SINGLE


class Submission:
    def __init__(
        self,
        state: RunState,
        move: Move,
        on_outcome: Callable[[Slot, Outcome], None],
        step_resources: dict[str, dict[str, float] | None],
        import_paths: tuple[str, ...],
        chunks: Chunks,
    ):
        self.chunks = chunks
        self.state = state
        self.move = move
        self.on_outcome = on_outcome
        self.step_resources = step_resources
        self.import_paths = import_paths

    def submit(self) -> None:
        state = self.state
        pending, state.to_submit = state.to_submit, {}
        for batch in pending.values():
            for slot, _ in batch:
                slot.to_submit = False
        for step, batch in pending.items():
            plan = state.plan.steps[step]
            if plan.step.kind == "batch":
                self._submit_batch(plan, batch)
                continue
            if plan.step.chunk is not None:
                resources = self.step_resources.get(step)
                if waiting := self.chunks.submit(plan, batch, self._call, resources):
                    for slot, _ in waiting:  # a last, partial chunk waits for more points
                        slot.to_submit = True
                    state.to_submit.setdefault(step, []).extend(waiting)
                continue
            calls = [self._call(plan.name, slot) for slot, _ in batch]
            keys = [f"{step}-{state.campaign_id}-{slot.point}-{slot.attempt}" for slot, _ in batch]
            futures = state.client.map(
                execute_task,
                calls,
                [up for _, up in batch],
                key=keys,
                pure=False,
                resources=self.step_resources.get(step),
            )
            for (slot, _), future in zip(batch, futures, strict=True):
                slot.future = future
                state.inflight[future.key] = slot

    def _submit_batch(self, plan: StepPlan, batch: list[tuple[Slot, Upstream]]) -> None:
        state = self.state
        assert state.batch is not None
        entries = [
            (slot, state.plan.sweep.point(slot.point) if slot.point != SINGLE else {}, up)
            for slot, up in batch
        ]
        try:
            state.batch.submit(plan, entries, self._note_jobs)
        except (ClusterError, OrchestratorError) as exc:
            now = time.time()
            for slot, _ in batch:
                if slot.future is not None:  # in an array submitted before SLURM refused
                    continue
                self.on_outcome(slot, Outcome(ok=False, error=str(exc), finished_at=now))

    def _note_jobs(self, slots: list[Slot]) -> None:
        """Commit the slots' job references now (before and after sbatch)."""
        for slot in slots:
            self.move(slot, slot.state, quiet=True)
        self.state.recorder.flush()

    def _call(self, name: str, slot: Slot) -> TaskCall:
        state, config = self.state, self.state.config
        plan = state.plan.steps[name]
        step = plan.step
        point = None if slot.point == SINGLE else slot.point
        return TaskCall(
            campaign_id=state.campaign_id,
            step=name,
            kind="command" if step.kind == "command" else "run",
            target=str(step.command if step.kind == "command" else step.run),
            point=point,
            attempt=slot.attempt,
            results_url=state.location.base_url,
            parameters=state.plan.sweep.point(slot.point) if point is not None else {},
            with_=dict(step.with_),
            pass_params=plan.pass_params,
            pass_ctx=plan.pass_ctx,
            keywords_known=plan.keywords_known,
            timeout=step.timeout,
            store_limit=config.store_limit,
            inline_limit=config.inline_limit,
            import_paths=self.import_paths,
            upload_deadline=config.upload_deadline,
            upload_block_size=config.upload_block_size,
        )
