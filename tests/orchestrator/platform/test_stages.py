"""The stages of bringing a project's instance up are events of the campaign (in the
store's columns, on SQLite and PostgreSQL), and the waiting campaign's status says the
latest one."""

from __future__ import annotations

from orchestrator.platform.stages import (
    PROVISIONING,
    READY,
    STARTING,
    record_stage,
    status_with_stage,
)
from orchestrator.service import Service
from tests.helpers import spec_doc, submit


def test_stages_are_events_and_the_waiting_status_says_the_last(any_service: Service) -> None:
    campaign = submit(any_service, spec_doc("w", {"s": {"run": "tests.workloads:noop"}}))
    assert status_with_stage(any_service, campaign)["message"] is None
    record_stage(any_service, [campaign], PROVISIONING, "tier small")
    assert status_with_stage(any_service, campaign)["message"] == (
        "provisioning cluster: tier small"
    )
    record_stage(any_service, [campaign], STARTING)
    record_stage(any_service, [campaign], READY, "http://127.0.0.1:8001")
    events = [e for e in any_service.events(campaign) if e.kind == "instance"]
    assert [(e.state, e.message) for e in events] == [
        ("provisioning", "provisioning cluster: tier small"),
        ("starting", "starting instance"),
        ("ready", "instance ready: http://127.0.0.1:8001"),
    ]
    assert any_service.status(campaign)["state"] == "accepted"  # nothing else changed
    any_service.fail(campaign, "no cluster")
    assert status_with_stage(any_service, campaign)["message"] == "no cluster"
