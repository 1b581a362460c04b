"""The rule of a live throttle: what `throttle ID [--step S] N` may change, and how.

Without a step the limit is the campaign's window: at most N points in flight (admitted
and not finished), never above the service's `engine.max_in_flight`, which stays the
ceiling. With a step, which must be a batch step, it is that step's array parallelism:
SLURM runs at most N tasks of each of its job arrays at once, for arrays already queued
(`scontrol update … ArrayTaskThrottle=N`) and for those submitted later. The throttle is
kept with the campaign (a resumed campaign keeps it) and recorded as a `throttled` event;
the campaign's runner applies it at its next poll of controls. A finished campaign cannot
be throttled (InvalidRequest); a limit below 1 or a step that is not one of the campaign's
batch steps is InvalidThrottle, naming the field.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InvalidRequest, InvalidThrottle
from orchestrator.states import CAMPAIGN_TERMINAL
from orchestrator.store import Store


def throttle_campaign(
    store: Store, campaign_id: str, limit: int, step: str | None = None
) -> dict[str, Any]:
    """Keep and send the throttle; returns the campaign's whole throttle
    (`{"window": N | None, "steps": {name: N}}`)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidThrottle(
            "limit", f"the limit must be a whole number of at least 1, not {limit!r}"
        )
    record = store.get_campaign(campaign_id)
    if step is not None:
        steps = record.spec.get("steps", {})
        if step not in steps:
            known = ", ".join(sorted(steps))
            raise InvalidThrottle("step", f"campaign {campaign_id} has no step {step!r} ({known})")
        if "batch" not in steps[step]:
            raise InvalidThrottle(
                "step",
                f"step {step!r} is not a batch step: a step's throttle is its job arrays' "
                "parallelism; leave the step out to throttle the campaign's window",
            )
    if record.state in CAMPAIGN_TERMINAL:
        raise InvalidRequest(f"campaign {campaign_id} is already {record.state}")
    # the store writes only while the state is the one judged here; else judge again
    kept = store.throttle(campaign_id, limit, step, seen=record)
    return throttle_campaign(store, campaign_id, limit, step) if kept is None else kept
