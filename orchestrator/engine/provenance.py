"""What the engine writes to the store's outbox for the knowledge graph: small payloads that
the registrar turns into PROV-O (`orchestrator.kg.outbox.to_registrables`)."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.engine.batch import JobRef
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.plan import StepPlan
from orchestrator.engine.slots import Slot
from orchestrator.store import SINGLE, CampaignRecord, TaskWrite


def campaign_payload(record: CampaignRecord, state: str, ended: bool = False) -> dict[str, Any]:
    return {
        "project": record.project,
        "name": record.name,
        "spec": record.spec,
        "submitted_by": record.owner,
        "submitted_at": record.created_at,
        "state": state,
        "ended_at": time.time() if ended else None,
    }


def task_payload(
    slot: Slot, write: TaskWrite, outcome: Outcome | None, used: list[list[Any]]
) -> dict[str, Any]:
    """Small on purpose (one per task): the registrar reads the point's parameters from
    the campaign's spec, and the project from its record."""
    payload: dict[str, Any] = {
        "step": slot.step,
        "point": None if slot.point == SINGLE else slot.point,
        "attempt": slot.attempt,
        "state": write.state,
        "started_at": write.started_at,
        "ended_at": write.finished_at,
    }
    if slot.job_ref is not None and (ref := JobRef.parse(slot.job_ref)) is not None:
        payload["slurm_job_id"] = ref.job_id
    if outcome is not None and outcome.ok and outcome.outputs:
        payload["outputs"] = outcome.outputs
    if used:
        payload["used"] = used
    return payload


def used_refs(
    plan: StepPlan, slot: Slot, point_slots: dict[str, Slot], singles: dict[str, Slot]
) -> list[list[Any]]:
    """The upstream tasks whose results this task was given: `[step, point, attempt]` (the
    same point's task, or a single step's: point None), and `[step]` for a step gathered
    whole (every point's latest succeeded attempt)."""
    used: list[list[Any]] = [
        [u, slot.point, point_slots[u].attempt] for u in plan.pointwise if u in point_slots
    ]
    used += [[b, None, singles[b].attempt] for b in plan.broadcast]
    used += [[g] for g in plan.gathered]
    return used
