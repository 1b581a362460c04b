"""Small helpers shared by the engine tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
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


def wait_for(predicate: Any, timeout: float = 60.0, what: str = "a condition") -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


CLI = [sys.executable, "-m", "orchestrator.cli"]


def start_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`orchestrator ARGS` as a child in its own session (so a test can kill its group only)."""
    return subprocess.Popen(
        CLI + args,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
