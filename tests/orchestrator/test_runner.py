"""The background runner that `serve` uses: picks up stored campaigns, stops cleanly."""

from __future__ import annotations

import time
from pathlib import Path

from cluster import LocalCompute
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.helpers import spec_doc, submit


def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_runner_runs_submitted_campaigns_of_its_projects(service: Service, compute: LocalCompute):
    doc = spec_doc(
        "bg", {"sq": {"run": "tests.workloads:square", "foreach": True}}, x={"range": [0, 10]}
    )
    mine = [submit(service, doc), submit(service, doc)]
    other = service.submit(parse_document(doc), project="other/project")
    runner = Runner(service, lambda project: compute, projects={"local/default"}, poll_interval=0.1)
    try:
        runner.start()
        _wait(lambda: all(service.status(c)["state"] == "succeeded" for c in mine))
    finally:
        runner.computes = {}  # the shared test cluster is not the runner's to close
        runner.close()
    assert service.status(other)["state"] == "accepted"


def test_closing_the_runner_leaves_campaigns_resumable(
    service: Service, compute: LocalCompute, tmp_path: Path
):
    doc = spec_doc(
        "stop",
        {
            "work": {
                "run": "tests.workloads:slow_counted",
                "foreach": True,
                "with": {"seconds": 0.2, "counter": str(tmp_path / "c")},
            }
        },
        x={"range": [0, 40]},
    )
    cid = submit(service, doc)
    runner = Runner(service, lambda project: compute, poll_interval=0.1)
    runner.start()
    _wait(lambda: service.status(cid)["counts"]["succeeded"] >= 3)
    runner.computes = {}
    runner.close()
    status = service.status(cid)
    assert status["state"] == "running" and status["counts"]["succeeded"] < 40
    assert service.store.get_campaign(cid).runner is None  # lease released: resumable at once
    assert service.run(cid, compute) == "succeeded"
    assert service.status(cid)["counts"]["succeeded"] == 40
