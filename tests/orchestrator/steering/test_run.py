"""The Python API for notebooks: connect(), a Run handle, results while it runs, extend and
partial cancel — on the embedded default in this process, and against a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import orchestrator
from cluster import ClusterSettings, LocalSettings
from orchestrator.builder import Campaign
from orchestrator.errors import InvalidThrottle
from orchestrator.settings import Settings
from orchestrator.steering import Session
from tests.api.test_client import Server, server  # noqa: F401  (a real uvicorn server)
from tests.conftest import fast_engine


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    settings = Settings(
        data_dir=tmp_path / "data",
        results_url=str(tmp_path / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=LocalSettings(n_workers=2, dashboard_address=None)),
    )
    with orchestrator.connect(settings=settings) as made:
        yield made


def _campaign(seconds: float = 0.0) -> Campaign:
    from tests.workloads import slow_square, total_of_squares

    return (
        Campaign("steer")
        .parameters(x=[1.0, 2.0, 3.0])
        .step("sq", run=slow_square, foreach=True, with_={"seconds": seconds})
        .step("total", run=total_of_squares, needs=["sq"])
    )


def test_submit_progress_results_and_extend(session: Session) -> None:
    run = session.submit(_campaign())
    final = run.progress()
    assert final["state"] == "succeeded"
    frame = run.results()
    assert list(frame.index) == [0, 1, 2]
    assert list(frame["x"]) == [1.0, 2.0, 3.0] and list(frame["sq"]) == [1.0, 4.0, 9.0]
    assert run.result("total") == 14.0

    run.extend(x=np.linspace(4.0, 5.0, 2))  # numpy values are fine
    assert run.wait(timeout=60)["state"] == "succeeded"
    frame = run.results()
    assert list(frame["x"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert run.result("total") == 14.0 + 16 + 25
    assert session.run(run.id).status()["points"] == 5


def test_results_while_running_and_cancel_where(session: Session) -> None:
    run = session.submit(_campaign(seconds=0.3).parameters(x=[float(i) for i in range(12)]))
    while run.results().empty:
        time.sleep(0.05)
    assert run.state in ("running", "succeeded")
    cancelled = run.cancel(where=lambda p: p["x"] >= 8)
    assert cancelled > 0
    final = run.wait(timeout=60)
    frame = run.results()
    assert all(frame["x"] < 8) and final["counts"]["cancelled"] >= cancelled


def test_the_same_api_against_a_server(server: Server) -> None:  # noqa: F811
    token = server.issuer.token(project="lab/p1")
    with orchestrator.connect(server.url, token=token, project="lab/p1") as remote:
        spec = {
            "name": "remote-steer",
            "parameters": {"x": [1, 2]},
            "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
        }
        run = remote.submit(spec)
        assert run.wait(timeout=60)["state"] == "succeeded"
        run.extend(points=[{"x": 7}])
        assert run.wait(timeout=60)["state"] == "succeeded"
        frame = run.results()
        assert dict(zip(frame["x"], frame["sq"], strict=True)) == {1: 1, 2: 4, 7: 49}
        assert any(c["id"] == run.id for c in remote.campaigns())


def test_throttle_from_a_notebook(session: Session) -> None:
    run = session.submit(_campaign(seconds=0.2).parameters(x=[float(i) for i in range(6)]))
    assert run.throttle(1) is run
    assert run.status()["throttle"] == {"window": 1, "steps": {}}
    assert run.wait(timeout=60)["state"] == "succeeded"
    applied = [e for e in run.events() if e["kind"] == "throttle-applied"]
    assert applied and applied[0]["message"] == "window: at most 1 point(s) in flight"
    with pytest.raises(InvalidThrottle, match="not a batch step"):
        run.throttle(2, step="sq")


def test_throttle_through_a_server(server: Server) -> None:  # noqa: F811
    token = server.issuer.token(project="lab/p1")
    with orchestrator.connect(server.url, token=token, project="lab/p1") as remote:
        spec = {
            "name": "remote-throttle",
            "parameters": {"x": [1, 2, 3]},
            "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
        }
        run = remote.submit(spec).throttle(2)
        assert run.status()["throttle"] == {"window": 2, "steps": {}}
        assert run.wait(timeout=60)["state"] == "succeeded"
        assert [e["kind"] for e in run.events()].count("throttled") == 1
