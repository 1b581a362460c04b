"""Lease fencing: a runner that lost its lease writes nothing more (SQLite and PostgreSQL).

Two runners on one store: the old one's late batch is refused (`LeaseLost`) in the same
transaction that would have written it, and the engine that lost its lease stops; renewals
run on a thread of their own, so an engine busy for longer than its lease keeps it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from cluster import LocalCompute
from orchestrator.engine import Engine
from orchestrator.engine.config import EngineConfig
from orchestrator.errors import LeaseLost
from orchestrator.service import Service
from orchestrator.store import EventWrite, Store, TaskWrite, WriteBatch
from orchestrator.store.tables import campaigns, events, tasks
from tests.helpers import spec_doc, submit, wait_for


def _new(store: Store) -> str:
    return store.create_campaign(
        spec={"name": "s", "steps": {"a": {"foreach": True}}},
        name="s",
        points=10,
        results_url="/tmp/r",
    )


def _expire(store: Store, campaign_id: str) -> None:
    """The holder's lease runs out (as when its process stalls past it)."""
    with store.engine.begin() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(lease_until=time.time() - 1)
        )


def _rows(store: Store, campaign_id: str) -> tuple[list[Any], list[Any]]:
    with store.engine.connect() as conn:
        task_rows = conn.execute(
            select(tasks)
            .where(tasks.c.campaign_id == campaign_id)
            .order_by(tasks.c.step, tasks.c.point)
        ).all()
        event_rows = conn.execute(
            select(events).where(events.c.campaign_id == campaign_id).order_by(events.c.seq)
        ).all()
    return [tuple(r) for r in task_rows], [tuple(r) for r in event_rows]


def _batch(campaign_id: str, runner: str, state: str) -> WriteBatch:
    batch = WriteBatch(campaign_id, runner=runner)
    batch.tasks[("a", 0)] = TaskWrite("a", 0, state, 1)
    batch.events.append(EventWrite(time.time(), "task", "a", 0, state, 1))
    return batch


def test_a_late_batch_of_the_old_runner_is_refused(any_service: Service):
    store = any_service.store
    cid = _new(store)
    assert store.claim(cid, "host:1:old", 30) is None
    store.apply(_batch(cid, "host:1:old", "queued"))  # while it holds the lease: written
    _expire(store, cid)
    with pytest.raises(LeaseLost):  # ran out, nobody took it yet: refused all the same
        store.apply(_batch(cid, "host:1:old", "running"))
    assert store.claim(cid, "host:2:new", 30) is None
    before = _rows(store, cid)
    with pytest.raises(LeaseLost, match="no longer holds the lease"):
        store.apply(_batch(cid, "host:1:old", "succeeded"))
    with pytest.raises(LeaseLost):
        store.set_campaign_state(cid, "failed", "late", runner="host:1:old")
    with pytest.raises(LeaseLost):
        store.reopen(cid, ["a"], "late", runner="host:1:old")
    assert not store.heartbeat(cid, "host:1:old", 30)
    assert _rows(store, cid) == before
    record = store.get_campaign(cid)
    assert (record.runner, record.state) == ("host:2:new", "accepted")
    store.apply(_batch(cid, "host:2:new", "running"))  # the new holder writes
    assert store.get_task(cid, "a", 0).state == "running"  # type: ignore[union-attr]


def test_an_engine_that_lost_its_lease_stops_and_writes_nothing_more(
    any_service: Service, compute: LocalCompute
):
    store = any_service.store
    doc = spec_doc(
        "fenced",
        {"work": {"run": "tests.workloads:slow", "foreach": True, "with": {"seconds": 0.1}}},
        x={"range": [0, 200]},
    )
    cid = submit(any_service, doc)
    engine = any_service.engine(cid, compute)
    outcome: dict[str, BaseException | str] = {}

    def run() -> None:
        try:
            outcome["state"] = engine.run()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: any_service.status(cid)["counts"].get("succeeded", 0) >= 5, 60, "progress")
    _expire(store, cid)
    assert store.claim(cid, "otherhost:1:new", 600) is None  # a second runner takes over
    taken = _rows(store, cid)
    thread.join(30)
    assert not thread.is_alive(), "the old engine went on running"
    assert isinstance(outcome.get("error"), LeaseLost), outcome
    time.sleep(1.0)  # anything it still had queued would land now
    assert _rows(store, cid) == taken  # nothing written after it lost the lease
    assert store.get_campaign(cid).runner == "otherhost:1:new"  # not released by the old one
    store.release(cid, "otherhost:1:new")
    assert any_service.run(cid, compute) == "succeeded"
    assert any_service.status(cid)["counts"]["succeeded"] == 200


def test_the_lease_is_renewed_while_the_engine_is_busy(service: Service, compute: LocalCompute):
    """A progress report that blocks the engine for three lease lengths as it finishes: the
    lease is still renewed, so a second runner cannot take the campaign meanwhile."""
    doc = spec_doc(
        "busy", {"sq": {"run": "tests.workloads:square", "foreach": True}}, x={"range": [0, 4]}
    )
    cid = submit(service, doc)
    blocked = threading.Event()
    refused: list[str | None] = []

    def progress(snapshot: dict[str, dict[str, int]]) -> None:
        if snapshot.get("sq", {}).get("succeeded") == 4 and not blocked.is_set():
            blocked.set()
            time.sleep(3.0)  # a slow report (or SSH call) on the engine's path: 3 leases

    config = EngineConfig(lease_seconds=1.0, flush_interval=0.02, control_interval=0.1)
    engine = Engine(service.store, compute.client, cid, config, progress, compute=compute)
    thread = threading.Thread(target=engine.run)
    thread.start()
    wait_for(blocked.is_set, 60, "the blocking report")
    for _ in range(5):
        time.sleep(0.5)
        refused.append(service.store.claim(cid, "otherhost:1:intruder", 30))
    thread.join(30)
    assert refused == [engine.runner] * 5
    assert service.status(cid)["state"] == "succeeded"
