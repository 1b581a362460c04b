"""The status object of a campaign (DESIGN.md: id, name, state, points, counts, steps)."""

from __future__ import annotations

from typing import Any

from orchestrator.states import CampaignState, TaskState
from orchestrator.store import CampaignRecord

TASK_STATES = [s.value for s in TaskState]


def step_totals(record: CampaignRecord) -> dict[str, int]:
    steps = record.spec.get("steps", {})
    return {name: record.points if s.get("foreach") else 1 for name, s in steps.items()}


def build_status(record: CampaignRecord, rows: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Counts from task rows; tasks without a row are pending (cancelled if the campaign is)."""
    steps: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys(TASK_STATES, 0)
    for name, total in step_totals(record).items():
        counts = dict.fromkeys(TASK_STATES, 0)
        counts.update(rows.get(name, {}))
        unseen = total - sum(counts.values())
        counts["pending"] += unseen
        if record.state == CampaignState.CANCELLED:
            counts["cancelled"] += counts["pending"]
            counts["pending"] = 0
        for state, n in counts.items():
            totals[state] += n
        steps[name] = {"total": total, **counts}
    return {
        "id": record.id,
        "name": record.name,
        "project": record.project,
        "state": record.state,
        "points": record.points,
        "counts": totals,
        "steps": steps,
        "results": record.results_url,
        "message": record.message,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "throttle": record.throttle,  # {"window": N, "steps": {name: N}} once throttled
    }


def all_succeeded(status: dict[str, Any]) -> bool:
    counts = status["counts"]
    return status["state"] == CampaignState.SUCCEEDED and all(
        n == 0 for state, n in counts.items() if state != "succeeded"
    )
