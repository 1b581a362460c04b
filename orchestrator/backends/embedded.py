"""The embedded default in this process: a `Service` over the local store, and, for a
notebook, a background `Runner` that runs what is submitted (starting the LocalCluster on
first use). Without one, campaigns run when the CLI asks (`orchestrator run`, `resume`)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orchestrator.service import DEFAULT_PROJECT, Service

if TYPE_CHECKING:
    from orchestrator.runner import Runner
    from orchestrator.settings import Settings

EVENT_POLL = 0.2  # seconds between reads of a followed campaign's new events


class EmbeddedBackend:
    runs_here = True

    def __init__(
        self,
        service: Service | None = None,
        runner: Runner | None = None,
        *,
        settings: Settings | None = None,
    ):
        # without a service, one is opened (the store created, migrated) on first use: a
        # spec found invalid before that leaves nothing behind
        self._service, self._settings, self.runner = service, settings, runner

    @classmethod
    def open(cls, settings: Settings | None = None, *, background: bool = False) -> EmbeddedBackend:
        if not background:
            return cls(settings=settings)
        from orchestrator.dashboard import register_campaigns_page
        from orchestrator.runner import Runner
        from orchestrator.settings import load_settings

        service = Service(settings or load_settings())
        register_campaigns_page(service, DEFAULT_PROJECT)
        runner = Runner(service, poll_interval=0.2)
        runner.start()
        return cls(service, runner)

    @property
    def service(self) -> Service:
        if self._service is None:
            from orchestrator.settings import load_settings

            self._service = Service(self._settings or load_settings())
        return self._service

    def _wake(self) -> None:
        if self.runner is not None:
            self.runner.wake()

    def submit(self, document: dict[str, Any], import_paths: list[str]) -> str:
        spec = Service.validate(document, import_paths)  # before the store is opened
        campaign_id = self.service.submit(spec, import_paths=import_paths or None)
        self._wake()
        return campaign_id

    def status(self, campaign_id: str) -> dict[str, Any]:
        return self.service.status(campaign_id)

    def list(
        self, *, state: str | None = None, name: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        return self.service.list_campaigns(state=state, name=name, limit=limit)

    def tasks(
        self, campaign_id: str, step: str | None, state: str | None
    ) -> Iterator[dict[str, Any]]:
        return iter(self.service.tasks(campaign_id, step=step, state=state, limit=10**9))

    def unstarted_points(
        self, campaign_id: str, started: set[int]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        return self.service.unstarted_points(campaign_id, started)

    def extend(self, campaign_id: str, **change: Any) -> dict[str, Any]:
        status = self.service.extend(campaign_id, **change)
        self._wake()
        return status

    def cancel(self, campaign_id: str, step: str | None, point: int | None) -> None:
        self.service.cancel(campaign_id, step=step, point=point)

    def throttle(self, campaign_id: str, limit: int, step: str | None) -> dict[str, Any]:
        return self.service.throttle(campaign_id, limit, step=step)

    def restart(self, campaign_id: str) -> dict[str, Any]:
        self.service.restart(campaign_id)
        self._wake()
        return self.service.status(campaign_id)

    def events(self, campaign_id: str, after: int, follow: bool) -> Iterator[dict[str, Any]]:
        for event in self.service.follow_events(campaign_id, after, follow=follow, poll=EVENT_POLL):
            yield event.to_json()

    def logs(self, campaign_id: str, task: str) -> str:
        return self.service.logs(campaign_id, task)

    def dashboard_link(self) -> str | None:
        if self.runner is None:
            return None
        compute = self.runner.compute(DEFAULT_PROJECT, start=False)
        return compute.dashboard_link if compute is not None else None

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
        if self._service is not None:
            self._service.close()

    def __enter__(self) -> EmbeddedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
