"""The state store on SQLite and PostgreSQL: migrations, leases, idempotency, events."""

from __future__ import annotations

import os
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orchestrator.errors import CampaignNotFound, InvalidRequest
from orchestrator.service import Service
from orchestrator.store import EventWrite, Store, TaskWrite, WriteBatch
from orchestrator.store.tables import metadata


def _new(store: Store, **kwargs: object) -> str:
    return store.create_campaign(
        spec={"name": "s", "steps": {"a": {"foreach": True}}},
        name="s",
        points=10,
        results_url="/tmp/r",
        **kwargs,
    )  # type: ignore[arg-type]


def test_migrations_build_exactly_the_declared_schema(any_service: Service):
    with any_service.store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrate_is_idempotent(any_service: Service):
    any_service.store.migrate()
    any_service.store.migrate()
    assert any_service.list_campaigns() == []


def test_events_are_numbered_per_campaign_without_gaps(any_service: Service):
    store = any_service.store
    first, second = _new(store), _new(store)
    for i in range(3):
        batch = WriteBatch(first)
        batch.tasks[("a", i)] = TaskWrite("a", i, "queued", 1)
        batch.events.append(EventWrite(time.time(), "task", "a", i, "queued", 1))
        store.apply(batch)
    assert [e.seq for e in store.events(first)] == [1, 2, 3, 4]
    assert [e.seq for e in store.events(second)] == [1]
    assert [e.seq for e in store.events(first, after=2)] == [3, 4]


def test_task_upsert_keeps_one_row_per_task(any_service: Service):
    store = any_service.store
    cid = _new(store)
    for state in ("queued", "running", "succeeded"):
        batch = WriteBatch(cid)
        batch.tasks[("a", 3)] = TaskWrite(
            "a", 3, state, 1, result={"v": [1, 2]} if state == "succeeded" else None
        )
        store.apply(batch)
    (row,) = store.list_tasks(cid)
    assert row.state == "succeeded" and row.result == {"v": [1, 2]} and row.point == 3
    assert store.task_counts(cid) == {"a": {"succeeded": 1}}


def test_a_live_runner_keeps_its_lease(any_service: Service):
    store = any_service.store
    cid = _new(store)
    me = f"{os.uname().nodename}:{os.getpid()}:aaa"
    assert store.claim(cid, me, 30) is None
    assert store.claim(cid, "otherhost:1:bbb", 30) == me
    assert store.heartbeat(cid, me, 30)
    store.release(cid, me)
    assert store.claim(cid, "otherhost:1:bbb", 30) is None
    assert not store.heartbeat(cid, me, 30)  # lost: the other runner has it


def test_a_dead_local_runner_loses_its_lease_at_once(any_service: Service):
    store = any_service.store
    cid = _new(store)
    dead = f"{os.uname().nodename}:999999999:ccc"  # no such pid
    assert store.claim(cid, dead, 3600) is None
    assert store.claim(cid, f"{os.uname().nodename}:{os.getpid()}:ddd", 30) is None


def test_idempotency_key_returns_the_same_campaign(any_service: Service):
    store = any_service.store
    first = _new(store, project="lab/p1", idempotency_key="k1")
    assert _new(store, project="lab/p1", idempotency_key="k1") == first
    assert _new(store, project="lab/p2", idempotency_key="k1") != first
    assert len(store.list_campaigns(project="lab/p1")) == 1


def test_cancel_without_a_runner_is_immediate_and_final(any_service: Service):
    cid = _new(any_service.store)
    any_service.cancel(cid)
    status = any_service.status(cid)
    assert status["state"] == "cancelled" and status["counts"]["cancelled"] == 10
    with pytest.raises(InvalidRequest):
        any_service.cancel(cid)
    assert any_service.restart(cid) == 0
    assert any_service.status(cid)["state"] == "accepted"


def test_list_is_newest_first_and_filters(any_service: Service):
    ids = [_new(any_service.store) for _ in range(3)]
    listed = [c["id"] for c in any_service.list_campaigns()]
    assert listed == list(reversed(ids))
    any_service.cancel(ids[0])
    assert [c["id"] for c in any_service.list_campaigns(state="cancelled")] == [ids[0]]


def test_delete_only_finished_campaigns(any_service: Service):
    cid = _new(any_service.store)
    with pytest.raises(InvalidRequest):
        any_service.delete(cid)
    any_service.cancel(cid)
    any_service.delete(cid)
    with pytest.raises(CampaignNotFound):
        any_service.status(cid)


def test_guarded_writes_refuse_a_campaign_changed_since_it_was_read(any_service: Service):
    store = any_service.store
    cid = _new(store)
    before = store.get_campaign(cid)
    me = f"{os.uname().nodename}:{os.getpid()}:eee"
    assert store.claim(cid, me, 30) is None  # a runner takes it after `before` was read
    assert store.restart(cid, seen=before) is None
    store.request_cancel(cid, at_once=before)
    assert store.get_campaign(cid).state == "accepted"  # left to the runner's hands
    assert [c.action for c in store.active_controls(cid)] == ["cancel"]
    with pytest.raises(InvalidRequest, match="still running"):
        any_service.restart(cid)
    store.release(cid, me)

    spec = store.get_campaign(cid).spec
    assert store.extend(cid, spec, 12, [], seen=store.get_campaign(cid)) == 2
    assert store.extend(cid, spec, 14, [], seen=before) is None  # points changed meanwhile
    assert store.get_campaign(cid).points == 12

    any_service.cancel(cid)
    cancelled = store.get_campaign(cid)
    any_service.restart(cid)
    assert not store.delete_campaign(cid, seen=cancelled)  # restarted meanwhile
    assert store.get_campaign(cid).state == "accepted"
