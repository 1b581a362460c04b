"""How a run ends: the campaign's final state and message, from its tasks and what the end
of the run could not store (FSx exports, the manifest)."""

from __future__ import annotations

from orchestrator.engine.outcome import first_of
from orchestrator.engine.slots import HELD
from orchestrator.engine.state import RunState
from orchestrator.states import CampaignState, TaskState


def final_state(
    state: RunState, export_failures: list[str], manifest_problem: str | None
) -> tuple[str, str | None]:
    """(state, message): a problem storing the results fails a campaign whose tasks all
    succeeded, and is added to the message of one that failed or was cancelled."""
    counts, steps = state.counts, state.plan.steps
    failed, cancelled, held = (
        sum(counts.get(step, s) for step in steps)
        for s in (TaskState.FAILED, TaskState.CANCELLED, HELD)
    )
    final: str
    message: str | None
    if state.workers_failed is not None:
        final, message = CampaignState.FAILED, state.workers_failed
    elif state.cancelling:
        final, message = CampaignState.CANCELLED, "cancelled on request"
    elif failed:
        final = CampaignState.FAILED
        message = f"{failed} task(s) failed"
        if held:
            message += f"; {held} downstream task(s) held"
    elif cancelled:
        final, message = CampaignState.CANCELLED, f"{cancelled} task(s) cancelled"
    else:
        final, message = CampaignState.SUCCEEDED, None
    problems = []
    if export_failures:
        problems.append(f"export to S3 failed: {first_of(export_failures)}")
    if manifest_problem is not None:
        problems.append(
            f"the results manifest is incomplete ({manifest_problem}); "
            "`orchestrator restart` writes it again"
        )
    for problem in problems:
        if final == CampaignState.SUCCEEDED:
            final, message = CampaignState.FAILED, problem
        else:
            message = f"{message}; {problem}"
    return final, message
