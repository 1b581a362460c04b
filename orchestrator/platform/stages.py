"""The stages of bringing a project's instance up, as events on its waiting campaigns.

Each is an event of kind `instance`: its `state` names the stage in a word (the store keeps
16 characters), its message says it in full; committed at once, so `events`, the live
stream and `status` (its `message` while the campaign is `accepted`) show how far the
campaign is from running.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

from orchestrator.service import Service
from orchestrator.states import CampaignState
from orchestrator.store.records import EventRecord, EventWrite, WriteBatch

KIND: Final = "instance"
# stage -> what its message begins with
PROVISIONING: Final = "provisioning"
STARTING: Final = "starting"
READY: Final = "ready"
SAID: Final = {
    PROVISIONING: "provisioning cluster",
    STARTING: "starting instance",
    READY: "instance ready",
}


def record_stage(
    service: Service, campaign_ids: Iterable[str], stage: str, detail: str | None = None
) -> None:
    """Append `stage` to each campaign's history (one transaction per campaign)."""
    now = time.time()
    message = SAID[stage] + (f": {detail}" if detail else "")
    for campaign_id in campaign_ids:
        event = EventWrite(now, KIND, state=stage, message=message)
        service.store.apply(WriteBatch(campaign_id, events=[event]))


def latest_stage(service: Service, campaign_id: str) -> EventRecord | None:
    """The campaign's latest stage event (None before any)."""
    found = service.store.events(campaign_id, kind=KIND, limit=10_000)
    return found[-1] if found else None


def status_with_stage(service: Service, campaign_id: str) -> dict[str, Any]:
    """The campaign's status; while it waits (`accepted`, no message of its own), its
    `message` is the latest stage of its project's instance."""
    status = service.status(campaign_id)
    if status["state"] == CampaignState.ACCEPTED and not status.get("message"):
        stage = latest_stage(service, campaign_id)
        if stage is not None:
            status["message"] = stage.message
    return status
