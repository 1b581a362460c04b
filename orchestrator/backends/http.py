"""A server, through its REST API (`orchestrator.client.Client`)."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterator
from typing import Any

from orchestrator.client import Client
from orchestrator.store import EventRecord


class HTTPBackend:
    runs_here = False

    def __init__(self, client: Client):
        self.client = client

    def submit(self, document: dict[str, Any], import_paths: list[str]) -> str:
        # the server imports the callables from its own paths: `import_paths` stay here
        return str(self.client.submit(document)["id"])

    def status(self, campaign_id: str) -> dict[str, Any]:
        return self.client.status(campaign_id)

    def list(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> builtins.list[dict[str, Any]]:
        return self.client.list(state=state, name=name, limit=limit)

    def tasks(
        self, campaign_id: str, step: str | None, state: str | None
    ) -> Iterator[dict[str, Any]]:
        return self.client.tasks(campaign_id, step=step, state=state)

    def unstarted_points(
        self, campaign_id: str, started: set[int]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        return iter(())  # the REST API lists tasks, not the sweep: only started points show

    def extend(self, campaign_id: str, **change: Any) -> dict[str, Any]:
        return self.client.extend(campaign_id, **change)

    def cancel(self, campaign_id: str, step: str | None, point: int | None) -> None:
        self.client.cancel(campaign_id, step=step, point=point)

    def throttle(self, campaign_id: str, limit: int, step: str | None) -> dict[str, Any]:
        return self.client.throttle(campaign_id, limit, step=step)

    def restart(self, campaign_id: str) -> dict[str, Any]:
        return self.client.restart(campaign_id)

    def events(self, campaign_id: str, after: int, follow: bool) -> Iterator[dict[str, Any]]:
        # the same shape as the embedded default's: EventRecord.to_json()
        names = [f.name for f in dataclasses.fields(EventRecord)]
        for item in self.client.events(campaign_id, after=after, follow=follow):
            fields: dict[str, Any] = {name: item.get(name) for name in names}
            yield EventRecord(**fields).to_json()

    def logs(self, campaign_id: str, task: str) -> str:
        return self.client.logs(campaign_id, task)

    def dashboard_link(self) -> str | None:
        link = self.client.cluster().get("dashboard_link")
        return str(link) if link else None

    def wait(self, campaign_id: str, *, progress: bool = False) -> dict[str, Any]:
        """Until the server has run it; the final status."""
        return self.client.wait(campaign_id, progress=progress)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HTTPBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
