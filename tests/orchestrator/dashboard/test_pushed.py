"""The Campaigns page lives in the scheduler's own process, which reads no store: the service
pushes it the campaigns of the project it was registered for, and nothing else; only the
service's client may push (a task with a worker's certificates is refused)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from distributed import get_worker

from cluster import LocalCompute, LocalSettings
from orchestrator.dashboard import register_campaigns_page, unregister_campaigns_page
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.helpers import spec_doc, wait_for


def _pushed_projects() -> list[str] | None:  # runs in the scheduler process
    from orchestrator.dashboard.pushed import FEED

    latest = FEED.latest
    return None if latest is None else sorted({c.project for c in latest.campaigns})


def _push_as_worker() -> str:  # runs in a task, with the worker's certificates
    from distributed.core import rpc

    worker = get_worker()

    async def push() -> Any:
        async with rpc(
            worker.scheduler.address, connection_args=worker.security.get_connection_args("worker")
        ) as scheduler:
            return await scheduler.orchestrator_campaigns(
                snapshot={"time": 0.0, "project": None, "campaigns": [], "error": "forged"}
            )

    try:
        asyncio.run(push())
    except Exception as exc:
        return f"refused: {exc}"
    return "pushed"


@pytest.fixture
def project_page(service: Service) -> Iterator[LocalCompute]:
    doc = spec_doc("page", {"one": {"run": "tests.workloads:square", "foreach": True}}, x=[1])
    service.submit(parse_document(doc), project="lab/mine")
    service.submit(parse_document({**doc, "name": "theirs"}), project="lab/theirs")
    assert register_campaigns_page(service, "lab/mine", interval=0.2)
    try:
        with LocalCompute(LocalSettings(n_workers=1, dashboard_address="127.0.0.1:0")) as local:
            yield local
    finally:
        unregister_campaigns_page()


def test_the_scheduler_gets_only_its_projects_campaigns(project_page: LocalCompute) -> None:
    client = project_page.client
    projects = wait_for(lambda: client.run_on_scheduler(_pushed_projects), 60, "a snapshot")
    assert projects == ["lab/mine"]


def test_only_the_services_client_may_push_campaigns(project_page: LocalCompute) -> None:
    outcome = project_page.client.submit(_push_as_worker, pure=False).result(timeout=60)
    assert outcome.startswith("refused:") and "only the service's client" in outcome
