"""Adding points to a campaign (`extend`): finished work untouched, fan-in steps see all."""

from __future__ import annotations

import threading
import time

import pytest

from cluster import LocalCompute
from orchestrator.errors import InvalidRequest, SpecError
from orchestrator.service import Service
from tests.helpers import run, spec_doc, submit


def _doc(seconds: float = 0.0) -> dict:
    return spec_doc(
        "extend",
        {
            "sq": {
                "run": "tests.workloads:slow_square",
                "foreach": True,
                "with": {"seconds": seconds},
            },
            "total": {"run": "tests.workloads:total_of_squares", "needs": ["sq"]},
        },
        x=[1, 2, 3],
    )


def _tasks(service: Service, cid: str, step: str) -> dict:
    return {t.point: t for t in service.store.list_tasks(cid, step=step, limit=1000)}


def test_extend_a_finished_campaign(service: Service, compute: LocalCompute) -> None:
    cid, state = run(service, compute, _doc())
    assert state == "succeeded"
    status = service.extend(cid, points=[{"x": 10}, {"x": 20}])
    assert status["state"] == "accepted" and status["points"] == 5
    assert service.run(cid, compute) == "succeeded"
    sq = _tasks(service, cid, "sq")
    assert {p: t.result for p, t in sq.items()} == {0: 1, 1: 4, 2: 9, 3: 100, 4: 400}
    assert all(sq[p].attempt == 1 for p in range(3))  # finished work untouched
    total = _tasks(service, cid, "total")[None]
    assert total.result == 514 and total.attempt == 2
    kinds = [e.kind for e in service.events(cid, limit=1000)]
    assert "extended" in kinds


def test_extend_a_running_campaign_with_a_sub_grid(service: Service, compute: LocalCompute) -> None:
    cid = submit(service, _doc(seconds=0.4))
    outcome: dict[str, str] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("s", service.run(cid, compute)))
    thread.start()
    deadline = time.time() + 30
    while service.status(cid)["state"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    service.extend(cid, parameters={"x": {"range": [4, 7]}})
    thread.join(60)
    assert outcome["s"] == "succeeded"
    status = service.status(cid)
    assert status["points"] == 6 and status["steps"]["sq"]["succeeded"] == 6
    assert _tasks(service, cid, "total")[None].result == sum(x * x for x in range(1, 7))


def test_extend_is_validated_like_a_spec(service: Service, compute: LocalCompute) -> None:
    cid, _ = run(service, compute, _doc())
    with pytest.raises(SpecError, match=r"extensions\.0\.parameters"):
        service.extend(cid, parameters={"y": [1]})
    with pytest.raises(SpecError, match="points"):
        service.extend(cid, points=[{"x": 1}, {"y": 2}])
    with pytest.raises(InvalidRequest, match="either"):
        service.extend(cid)
    assert service.status(cid)["points"] == 3  # nothing stored for a rejected extension


def test_a_cancelled_campaign_cannot_be_extended(service: Service, compute: LocalCompute) -> None:
    cid = submit(service, _doc())
    service.cancel(cid)
    service.run(cid, compute)
    with pytest.raises(InvalidRequest, match="cancelled"):
        service.extend(cid, points=[{"x": 5}])


def test_concurrent_extends_lose_nothing(any_service: Service) -> None:
    """Eight extends of two points each, at once: every one lands, and the points already
    numbered keep their parameters (the store writes an extension only on the point count it
    was built on; a loser builds again on the new count)."""
    from orchestrator.spec import CampaignSpec

    service = any_service
    cid = submit(service, _doc())
    before = CampaignSpec.model_validate(service.campaign(cid).spec).make_sweep()
    first = [before.point(p) for p in range(3)]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def extend(n: int) -> None:
        try:
            start.wait(timeout=30)
            service.extend(cid, points=[{"x": 100 + 2 * n}, {"x": 101 + 2 * n}])
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=extend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    record = service.campaign(cid)
    assert record.points == 3 + 16
    sweep = CampaignSpec.model_validate(record.spec).make_sweep()
    assert [sweep.point(p) for p in range(3)] == first
    added = sorted(sweep.point(p)["x"] for p in range(3, 19))
    assert added == list(range(100, 116))
