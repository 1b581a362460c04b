"""The Campaigns page in the scheduler's process, fed by the service.

The scheduler runs in a process of its own that holds no secret and reads no store, so the
service reads the campaigns (for the project it was registered for, or for every project on
the one-machine default) and pushes a snapshot to the scheduler once per refresh interval,
through a scheduler handler that only the service's client may call. The page shows the
latest snapshot it got. `register` and `attach` run in the scheduler process
(`cluster.scheduler.pages`); `CampaignsPublisher` runs in the service.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

from distributed import Client

from orchestrator.dashboard.overview import (
    CampaignOverview,
    CampaignsFeed,
    Failure,
    Snapshot,
    StepCounts,
)

logger = logging.getLogger(__name__)

HANDLER = "orchestrator_campaigns"
STALE = 30.0  # seconds without a snapshot before the page says the service is silent


# ----------------------------------------------------------------- snapshots as messages
def snapshot_message(snap: Snapshot) -> dict[str, Any]:
    return dataclasses.asdict(snap)


def snapshot_from_message(message: dict[str, Any]) -> Snapshot:
    campaigns = [
        CampaignOverview(
            **{
                **c,
                "steps": [StepCounts(**s) for s in c["steps"]],
                "failures": [Failure(**f) for f in c["failures"]],
            }
        )
        for c in message.get("campaigns", [])
    ]
    return Snapshot(
        time=float(message["time"]),
        project=message.get("project"),
        campaigns=campaigns,
        error=message.get("error"),
    )


# ------------------------------------------------------------ in the scheduler process
class PushedFeed:
    """The latest snapshot the service pushed, for the pages of this scheduler."""

    def __init__(self) -> None:
        self.latest: Snapshot | None = None

    def receive(self, snapshot: dict[str, Any]) -> None:
        self.latest = snapshot_from_message(snapshot)

    def snapshot(self, project: str | None = None) -> Snapshot:
        latest, now = self.latest, time.time()
        if latest is None:
            return Snapshot(now, project, error="waiting for the service's first snapshot")
        campaigns = [c for c in latest.campaigns if project is None or c.project == project]
        error = latest.error
        if error is None and now - latest.time > STALE:
            error = f"no news from the service for {now - latest.time:.0f}s"
        return Snapshot(latest.time, project, campaigns, error)


FEED = PushedFeed()


def register(interval: float = 1.0, path: str = "/campaigns", project: str | None = None) -> None:
    from distributed.dashboard import scheduler as dashboard

    from orchestrator.dashboard.page import campaigns_doc

    dashboard.applications[path] = campaigns_doc(FEED, project, int(interval * 1000))


def attach(scheduler: Any) -> None:
    scheduler.handlers[HANDLER] = FEED.receive


# ------------------------------------------------------------------------ in the service
class CampaignsPublisher:
    """Pushes the feed's snapshot of `project` to the scheduler every `interval` seconds."""

    def __init__(self, feed: CampaignsFeed, project: str | None, interval: float, client: Client):
        self.feed, self.project, self.interval, self.client = feed, project, interval, client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="campaigns-publisher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                message = snapshot_message(self.feed.snapshot(self.project))
                scheduler = self.client.scheduler
                if scheduler is None:
                    raise RuntimeError("the client is not connected")
                self.client.sync(scheduler.orchestrator_campaigns, snapshot=message)
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:  # once per streak: the scheduler may be closing
                    logger.warning("could not push campaigns to the dashboard: %s", exc)
            self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
