"""What a `Run` needs from where campaigns live: this process's service, or a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from orchestrator.client import Client
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.spec import CampaignSpec, parse_document


class Backend(Protocol):
    def submit(self, document: dict[str, Any], import_paths: list[str]) -> str: ...
    def status(self, campaign_id: str) -> dict[str, Any]: ...
    def list(self) -> list[dict[str, Any]]: ...
    def tasks(self, campaign_id: str, step: str | None, state: str | None) -> Iterator[dict]: ...
    def extend(self, campaign_id: str, **change: Any) -> dict[str, Any]: ...
    def cancel(self, campaign_id: str, step: str | None, point: int | None) -> None: ...
    def restart(self, campaign_id: str) -> None: ...
    def events(self, campaign_id: str, after: int, follow: bool) -> Iterator[dict]: ...
    def logs(self, campaign_id: str, task: str) -> str: ...
    def dashboard_link(self) -> str | None: ...
    def close(self) -> None: ...


class Embedded:
    """The embedded default in this process: a service and a background runner (which starts
    the LocalCluster on first use)."""

    def __init__(self, service: Service, runner: Runner):
        self.service, self.runner = service, runner

    def submit(self, document: dict[str, Any], import_paths: list[str]) -> str:
        campaign_id = self.service.submit(parse_document(document), import_paths=import_paths)
        self.runner.wake()
        return campaign_id

    def status(self, campaign_id: str) -> dict[str, Any]:
        return self.service.status(campaign_id)

    def list(self) -> list[dict[str, Any]]:
        return self.service.list_campaigns()

    def tasks(self, campaign_id: str, step: str | None, state: str | None) -> Iterator[dict]:
        record = self.service.store.get_campaign(campaign_id)
        sweep = CampaignSpec.model_validate(record.spec).make_sweep()
        for row in self.service.store.list_tasks(campaign_id, step=step, state=state, limit=10**9):
            item = dict(row.__dict__)
            if row.point is not None and row.point < len(sweep):
                item["parameters"] = sweep.point(row.point)
            yield item

    def extend(self, campaign_id: str, **change: Any) -> dict[str, Any]:
        status = self.service.extend(campaign_id, **change)
        self.runner.wake()
        return status

    def cancel(self, campaign_id: str, step: str | None, point: int | None) -> None:
        self.service.cancel(campaign_id, step=step, point=point)

    def restart(self, campaign_id: str) -> None:
        self.service.restart(campaign_id)
        self.runner.wake()

    def events(self, campaign_id: str, after: int, follow: bool) -> Iterator[dict]:
        import time

        while True:
            batch = self.service.events(campaign_id, after=after)
            for event in batch:
                after = event.seq
                yield event.to_json()
            if not follow:
                return
            if not batch and self.service.status(campaign_id)["state"] in _DONE:
                return
            if not batch:
                time.sleep(0.2)

    def logs(self, campaign_id: str, task: str) -> str:
        return self.service.logs(campaign_id, task)

    def dashboard_link(self) -> str | None:
        compute = self.runner.compute("local/default", start=False)
        return compute.dashboard_link if compute is not None else None

    def close(self) -> None:
        self.runner.close()
        self.service.close()


class Remote:
    """A server, through the REST API (orchestrator.client)."""

    def __init__(self, client: Client):
        self.client = client

    def submit(self, document: dict[str, Any], import_paths: list[str]) -> str:
        return str(self.client.submit(document)["id"])

    def status(self, campaign_id: str) -> dict[str, Any]:
        return self.client.status(campaign_id)

    def list(self) -> list[dict[str, Any]]:
        return self.client.list()

    def tasks(self, campaign_id: str, step: str | None, state: str | None) -> Iterator[dict]:
        return self.client.tasks(campaign_id, step=step, state=state)

    def extend(self, campaign_id: str, **change: Any) -> dict[str, Any]:
        return self.client.extend(campaign_id, **change)

    def cancel(self, campaign_id: str, step: str | None, point: int | None) -> None:
        self.client.cancel(campaign_id, step=step, point=point)

    def restart(self, campaign_id: str) -> None:
        self.client.restart(campaign_id)

    def events(self, campaign_id: str, after: int, follow: bool) -> Iterator[dict]:
        return self.client.events(campaign_id, after=after, follow=follow)

    def logs(self, campaign_id: str, task: str) -> str:
        return self.client.logs(campaign_id, task)

    def dashboard_link(self) -> str | None:
        link = self.client.cluster().get("dashboard_link")
        return str(link) if link else None

    def close(self) -> None:
        self.client.close()


_DONE = {"succeeded", "failed", "cancelled"}
