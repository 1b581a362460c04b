"""A live throttle on the embedded default: the window of a running campaign lowered (fewer
tasks at once, seen in the store's events), kept across resume, and its refusals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import LocalCompute
from orchestrator.errors import InvalidRequest, InvalidThrottle
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.store import EventRecord
from tests.conftest import fast_engine
from tests.helpers import spec_doc, submit, wait_for

POINTS = 8


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A window of 2 points: the session's LocalCluster (2 workers) runs 2 tasks at once."""
    engine = fast_engine().model_copy(update={"max_in_flight": 2})
    svc = Service(
        Settings(data_dir=tmp_path / "data", results_url=str(tmp_path / "res"), engine=engine)
    )
    yield svc
    svc.close()


def _slow(seconds: float = 0.4) -> dict:
    step = {"run": "tests.workloads:slow", "foreach": True, "with": {"seconds": seconds}}
    return spec_doc("slow", {"nap": step}, x={"range": [0, POINTS]})


def _events(service: Service, cid: str) -> list[EventRecord]:
    return service.store.events(cid, limit=100_000)


def running_at_once(events: list[EventRecord], since: int = 0) -> tuple[int, int]:
    """(most tasks running at once before event `since`, most running at once after it once
    every task queued before it has ended), replayed from the task events."""
    running: set[int] = set()
    before_points: set[int] | None = None
    ended: set[int] = set()
    peak_before = peak_after = 0
    for event in events:
        if event.seq == since:
            queued = {e.point for e in events if e.seq < since and e.state == "queued"}
            before_points = {p for p in queued if p is not None} - ended
        if event.kind != "task" or event.point is None:
            continue
        if event.state == "running":
            running.add(event.point)
        elif event.state in ("succeeded", "failed", "cancelled"):
            running.discard(event.point)
            ended.add(event.point)
        if before_points is None:
            peak_before = max(peak_before, len(running))
        elif before_points <= ended:
            peak_after = max(peak_after, len(running))
    return peak_before, peak_after


def _applied(service: Service, cid: str) -> EventRecord | None:
    found = [e for e in _events(service, cid) if e.kind == "throttle-applied"]
    return found[0] if found else None


def test_throttle_1_runs_one_task_at_a_time_once_the_earlier_ones_end(
    service: Service, compute: LocalCompute
) -> None:
    cid = submit(service, _slow())
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(service.run(cid, compute)))
    runner.start()
    try:
        wait_for(
            lambda: service.status(cid)["counts"]["running"] >= 2, 60, "two tasks running at once"
        )
        status = service.throttle(cid, 1)
        assert status["throttle"] == {"window": 1, "steps": {}}
        applied = wait_for(lambda: _applied(service, cid), 30, "the throttle applied")
    finally:
        runner.join(120)
    assert outcome == ["succeeded"]
    events = _events(service, cid)
    requested = [e for e in events if e.kind == "throttled"]
    assert requested and requested[0].message == "at most 1 point(s) in flight"
    assert applied.message == "window: at most 1 point(s) in flight"
    before, after = running_at_once(events, applied.seq)
    assert before == 2  # the window let two run at once until then
    assert after == 1  # then one at a time
    queued_after = [e for e in events if e.seq > applied.seq and e.state == "queued"]
    assert len(queued_after) >= 3  # points were admitted under the throttle


def test_a_throttle_is_kept_with_the_campaign_and_applies_from_the_start(
    service: Service, compute: LocalCompute
) -> None:
    """Throttled while nobody runs it (as after a crash): the run that resumes it starts
    with the throttle, and a throttle above the service's window does not raise it."""
    cid = submit(service, _slow(0.2))
    service.throttle(cid, 1)
    assert service.status(cid)["throttle"]["window"] == 1
    assert service.run(cid, compute) == "succeeded"
    events = _events(service, cid)
    applied = [e for e in events if e.kind == "throttle-applied"]
    first_queued = min(e.seq for e in events if e.state == "queued")
    assert applied and applied[0].seq < first_queued
    _, after = running_at_once(events, applied[0].seq)
    assert after == 1

    raised = submit(service, _slow(0.2))
    service.throttle(raised, 50)
    assert service.run(raised, compute) == "succeeded"
    message = [e.message for e in _events(service, raised) if e.kind == "throttle-applied"]
    assert message == ["window: at most 2 point(s) in flight (engine.max_in_flight is 2)"]


def test_what_cannot_be_throttled_is_named(any_service: Service) -> None:
    service = any_service  # SQLite, then PostgreSQL
    batch = {"batch": {"script": "true"}, "foreach": True}
    doc = spec_doc("mixed", {"sim": batch, "nap": _slow()["steps"]["nap"]}, x=[1, 2])
    cid = submit(service, doc)
    with pytest.raises(InvalidThrottle, match="at least 1") as limit:
        service.throttle(cid, 0)
    assert limit.value.field == "limit"
    with pytest.raises(InvalidThrottle, match="no step 'nope'") as unknown:
        service.throttle(cid, 2, step="nope")
    assert unknown.value.field == "step"
    with pytest.raises(InvalidThrottle, match="'nap' is not a batch step"):
        service.throttle(cid, 2, step="nap")
    both = service.throttle(cid, 3, step="sim")
    assert both["throttle"] == {"window": None, "steps": {"sim": 3}}
    assert service.throttle(cid, 4)["throttle"] == {"window": 4, "steps": {"sim": 3}}
    service.cancel(cid)  # nobody runs it: cancelled at once
    with pytest.raises(InvalidRequest, match="already cancelled"):
        service.throttle(cid, 2)
    assert [e.kind for e in _events(service, cid)].count("throttled") == 2
