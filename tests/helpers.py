"""Small helpers shared by the engine tests."""

from __future__ import annotations

from typing import Any

from cluster import Compute
from orchestrator.service import Service
from orchestrator.spec import parse_document


def spec_doc(name: str, steps: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    return {"name": name, "parameters": parameters, "steps": steps}


def submit(service: Service, doc: dict[str, Any]) -> str:
    return service.submit(parse_document(doc), import_paths=[])


def run(service: Service, compute: Compute, doc: dict[str, Any]) -> tuple[str, str]:
    campaign_id = submit(service, doc)
    return campaign_id, service.run(campaign_id, compute)


def task_states(service: Service, campaign_id: str, step: str) -> dict[int | None, str]:
    return {t.point: t.state for t in service.store.list_tasks(campaign_id, step=step, limit=10**7)}
