"""Controls: the steering a campaign receives while it runs (cancel, extend, throttle), from
the store.

Controls are polled every `control_interval` (and once before the first task is queued),
each applied once, in the order they were stored. Guarantees:
- a cancelled task, point, step (with every step downstream of it) or campaign never starts
  again in this run: what is queued or running is cancelled now, what is not yet admitted
  is cancelled as it is admitted;
- `extend` adds points without touching finished ones; the single steps that see every
  point run again so that they see the new ones too. A campaign being cancelled is not
  extended;
- a throttle is applied as engine/throttle.py says, from the campaign's stored throttle
  (read when the run starts too, so a resumed campaign keeps it).
"""

from __future__ import annotations

import time

from orchestrator.engine.admission import Admission
from orchestrator.engine.slots import Slot
from orchestrator.engine.state import Move, RunState
from orchestrator.engine.throttle import apply_throttle
from orchestrator.spec import parse_document
from orchestrator.states import TaskState
from orchestrator.store import SINGLE, Control


class Controls:
    def __init__(self, state: RunState, move: Move, admission: Admission):
        self.state = state
        self.move = move
        self.admission = admission
        self.next_poll = 0.0
        self._after = 0  # the id of the last control applied
        apply_throttle(state, state.store.get_campaign(state.campaign_id).throttle)

    def poll(self) -> None:
        state = self.state
        self.next_poll = time.time() + state.config.control_interval
        throttled = False
        for control in state.store.active_controls(state.campaign_id, self._after):
            self._after = control.id
            if control.action == "cancel":
                self._cancel(control)
            elif control.action == "extend":
                self._extend()
            elif control.action == "throttle":
                throttled = True
        if throttled:  # the stored throttle holds every request so far
            apply_throttle(state, state.store.get_campaign(state.campaign_id).throttle)

    def _cancel(self, control: Control) -> None:
        state, cancel = self.state, self.admission.cancel
        if control.step is None and control.point is None:
            state.cancelling = True
            for slots in state.active.values():
                for slot in slots.values():
                    if not slot.resolved:
                        cancel(slot)
            for slot in state.singles.values():
                if not slot.resolved:
                    cancel(slot)
            state.to_submit = {}
            return
        targets: list[Slot] = []
        if control.point is None:
            assert control.step is not None
            steps = {control.step} | state.plan.descendants(control.step)
            state.cancelled_steps |= steps
            targets = [s for slots in state.active.values() for n, s in slots.items() if n in steps]
            targets += [state.singles[n] for n in steps if n in state.singles]
        elif control.step is None:
            state.cancelled_points.add(control.point)
            targets = list(state.active.get(control.point, {}).values())
        else:
            state.cancelled_tasks.add((control.step, control.point))
            found = state.active.get(control.point, {}).get(control.step)
            targets = [found] if found else []
        for slot in targets:
            if not slot.resolved:
                cancel(slot)
        for point in {s.point for s in targets if s.point != SINGLE}:
            if point in state.active:
                self.admission.advance_point(point)
        to_submit = {
            step: [(s, up) for s, up in batch if s.state != TaskState.CANCELLED]
            for step, batch in state.to_submit.items()
        }
        state.to_submit = {k: v for k, v in to_submit.items() if v}

    def _extend(self) -> None:
        """Points were added (`extend`): take the stored spec's longer sweep; fan-in steps
        run again to see them. Finished points are untouched."""
        state = self.state
        record = state.store.get_campaign(state.campaign_id)
        sweep = parse_document(record.spec).make_sweep()
        added = len(sweep) - state.plan.points
        if added <= 0 or state.cancelling:
            return
        state.plan.sweep = sweep
        for name in state.plan.foreach_steps:
            state.counts.grow(name, added)
        for refs in state.gather_refs.values():
            refs.extend([None] * added)
        for name in state.plan.rerun_on_extend():
            slot = state.singles[name]
            if slot.state == TaskState.PENDING and slot.future is None:
                continue
            if slot.future is not None:
                state.inflight.pop(getattr(slot.future, "key", None), None)
                if state.batch is not None and isinstance(slot.future, str):
                    state.batch.cancel(slot)
                else:
                    state.client.cancel([slot.future])
                slot.future = None
            slot.outcome, slot.waiting = None, False
            self.move(slot, TaskState.PENDING)
