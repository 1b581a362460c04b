"""A campaign of many tasks stays cheap to read: counts kept with the rows, pages by cursor over
an index, the admission's reads per step, the outbox's backlog a batch at a time.

The query plans are checked on both databases (PostgreSQL with sequential scans and sorts
priced out, so a plan that still has one has no index to use); on SQLite the work of a read is
also counted in SQLite's own virtual-machine steps over 200,000 task rows, so a read that
walks every row fails however fast the machine.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.service import Service
from orchestrator.states import CampaignState
from orchestrator.store import EventWrite, Store, TaskWrite, WriteBatch, _outbox, _tasks

STEPS = {"a": {"foreach": True}, "b": {"foreach": True, "needs": ["a"]}, "z": {"needs": ["b"]}}


def _campaign(store: Store, points: int) -> str:
    return store.create_campaign(
        spec={"name": "big", "parameters": {"x": {"range": [0, points]}}, "steps": STEPS},
        name="big",
        points=points,
        results_url="/tmp/r",
    )


def _fill(store: Store, cid: str, points: int, step: str = "a") -> None:
    """Raw SQL inserts of `points` task rows of `step` (every 100th failed): the engine's
    own path would take minutes; the schema's triggers run as for any write."""
    rows = (
        (cid, step, p, "failed" if p % 100 == 7 else "succeeded", 1, float(p))
        for p in range(points)
    )
    sql = (
        "INSERT INTO tasks (campaign_id, step, point, state, attempt, finished_at)"
        " VALUES (:c, :s, :p, :st, :a, :f)"
    )
    with store.engine.begin() as conn:
        conn.execute(
            text(sql),
            [dict(zip(("c", "s", "p", "st", "a", "f"), row, strict=True)) for row in rows],
        )
        conn.execute(text("ANALYZE"))


def _grouped(store: Store, cid: str) -> dict[str, dict[str, int]]:
    """The counts the slow way: every task row grouped."""
    found: dict[str, dict[str, int]] = {}
    with store.engine.connect() as conn:
        for step, state, n in conn.execute(
            text("SELECT step, state, count(*) FROM tasks WHERE campaign_id = :c GROUP BY 1, 2"),
            {"c": cid},
        ):
            found.setdefault(step, {})[state] = n
    return found


def test_task_counts_follow_every_writer(any_service: Service):
    store = any_service.store
    cid, other = _campaign(store, 50), _campaign(store, 50)
    assert store.task_counts(cid) == {}

    def apply(states: dict[tuple[str, int], str]) -> None:
        batch = WriteBatch(cid)
        for (step, point), state in states.items():
            batch.tasks[(step, point)] = TaskWrite(step, point, state, 1)
        store.apply(batch)
        assert store.task_counts(cid) == _grouped(store, cid)

    apply({("a", p): "queued" for p in range(40)})
    apply({("a", p): "running" for p in range(30)} | {("b", p): "queued" for p in range(5)})
    apply({("a", p): "succeeded" if p % 3 else "failed" for p in range(30)})
    apply({("a", p): "succeeded" for p in range(10)})  # some again, some unchanged
    _fill(store, other, 20)
    assert store.task_counts(cid)["a"] == {"queued": 10, "succeeded": 24, "failed": 6}
    assert store.task_counts(other) == {"a": {"succeeded": 19, "failed": 1}}

    store.restart(cid, seen=store.get_campaign(cid))  # failed tasks back to pending
    assert store.task_counts(cid) == _grouped(store, cid)
    assert store.task_counts(cid)["a"]["pending"] == 6
    store.reopen(cid, ["b"], "points added")
    assert store.task_counts(cid) == _grouped(store, cid)
    store.request_cancel(cid, at_once=store.get_campaign(cid))
    assert store.task_counts(cid) == _grouped(store, cid)
    assert any_service.status(cid)["state"] == CampaignState.CANCELLED

    assert store.delete_campaign(cid, seen=store.get_campaign(cid))
    with store.engine.begin() as conn:  # a campaign deleted with its tasks by cascade
        conn.execute(text("DELETE FROM campaigns WHERE id = :c"), {"c": other})
        left = conn.execute(text("SELECT count(*) FROM task_counts")).scalar_one()
    assert left == 0


def test_pages_by_cursor_list_every_task_once(any_service: Service):
    store = any_service.store
    cid = _campaign(store, 30)
    _fill(store, cid, 30, "a")
    _fill(store, cid, 30, "b")
    for step in (None, "a", "b"):
        for state in (None, "succeeded", "failed"):
            seen: list[tuple[str, int | None]] = []
            after: tuple[str, int] | None = None
            while page := store.list_tasks(cid, step=step, state=state, limit=7, after=after):
                seen += [(t.step, t.point) for t in page]
                after = (page[-1].step, page[-1].point if page[-1].point is not None else -1)
            expected = sorted(
                (s, p)
                for s in ("a", "b")
                for p in range(30)
                if step in (None, s) and state in (None, "failed" if p % 100 == 7 else "succeeded")
            )
            assert seen == expected, (step, state)
    # a cursor already past a step's rows gives none of them
    assert store.list_tasks(cid, step="a", after=("b", 3)) == []
    assert [t.point for t in store.list_tasks(cid, step="b", after=("a", 99), limit=2)] == [0, 1]


def _plans(store: Store, queries: dict[str, Any]) -> dict[str, str]:
    postgres = store.dialect == "postgresql"
    dialect = postgresql.dialect() if postgres else sqlite.dialect()
    found = {}
    with store.engine.connect() as conn:
        if postgres:  # priced out: a plan that still has one has no index to use
            conn.execute(text("SET enable_seqscan = off"))
            conn.execute(text("SET enable_sort = off"))
        for name, query in queries.items():
            sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            found[name] = " | ".join(str(r[-1]) for r in conn.execute(text(prefix + sql)))
    return found


def test_the_reads_of_a_campaign_are_index_ranges(any_service: Service):
    store = any_service.store
    cid = _campaign(store, 2000)
    _fill(store, cid, 2000)
    queries = {**_tasks.explained(cid), "registrations due": _outbox.due_query(time.time(), 100)}
    for name, plan in _plans(store, queries).items():
        if store.dialect == "postgresql":
            assert "Seq Scan" not in plan and "Sort" not in plan, (name, plan)
        else:
            # (task_counts is a few rows per campaign: scanning it is the planner's choice)
            walks = ("SCAN tasks", "SCAN outbox", "TEMP B-TREE")
            assert not any(walk in plan for walk in walks), (name, plan)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    """A SQLite store with one campaign of 200,000 task rows of step `a`."""
    path: Path = tmp_path_factory.mktemp("large") / "store.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    cid = _campaign(store, 200_000)
    _fill(store, cid, 200_000)
    yield store, cid
    store.close()


def _vm_steps(store: Store, read: Any) -> int:
    """SQLite virtual-machine steps (in thousands) that `read` makes its connection run."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def on_connect(dbapi: sqlite3.Connection, _: Any) -> None:
        dbapi.set_progress_handler(count, 1000)

    from sqlalchemy import event

    store.engine.dispose()  # new connections, each counting
    event.listen(store.engine, "connect", on_connect)
    try:
        read()
    finally:
        event.remove(store.engine, "connect", on_connect)
        store.engine.dispose()
    return steps


def test_reads_of_200k_tasks_do_not_walk_them(large: tuple[Store, str]):
    store, cid = large
    # walking every row of the campaign once costs this much: every read below is far less
    walk = _vm_steps(store, lambda: _grouped(store, cid))
    assert walk > 1000
    reads = {
        "counts": lambda: store.task_counts(cid),
        "first page": lambda: store.list_tasks(cid, limit=500),
        "deep page": lambda: store.list_tasks(cid, limit=500, after=("a", 150_000)),
        "failed, deep page": lambda: store.list_tasks(
            cid, state="failed", limit=500, after=("a", 150_000)
        ),
        "admission rows": lambda: store.tasks_in_range(cid, 120_000, 121_000),
        "admission max point": lambda: store.max_point(cid),
        "single steps": lambda: store.single_tasks(cid),
        "finished since": lambda: store.finished_since(cid, 199_000.0),
        "latest failures": lambda: store.recent_failures(cid, 3),
    }
    for name, read in reads.items():
        assert _vm_steps(store, read) < walk / 20, name
    assert store.task_counts(cid) == {"a": {"succeeded": 198_000, "failed": 2_000}}
    assert store.max_point(cid) == 199_999
    assert [t.point for t in store.tasks_in_range(cid, 120_000, 120_003)] == [
        120_000,
        120_001,
        120_002,
    ]


def test_the_outbox_backlog_is_read_a_batch_at_a_time(large: tuple[Store, str]):
    store, cid = large
    now = time.time()
    batch = WriteBatch(cid)
    batch.outbox.extend(("task", {"step": "a", "point": p, "attempt": 1}) for p in range(50_000))
    batch.events.append(EventWrite(now, "task", "a", 0, "succeeded", 1))
    store.apply(batch)
    walk = _vm_steps(store, lambda: store.outbox_backlog(cid))
    assert walk > 100
    assert _vm_steps(store, lambda: store.due_registrations(now + 1, 100)) < walk / 20
    due = store.due_registrations(now + 1, 100)
    assert [item.payload["point"] for item in due] == list(range(100))
