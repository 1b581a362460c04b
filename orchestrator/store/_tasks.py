"""Task rows, and the runner's write batches.

A task has a row once it has been queued (pending tasks have none); a step without
foreach has one task, at point `SINGLE`. A batch (task rows, events, knowledge-graph
registrations, the campaign's state) is written in one transaction, so a finished task
is reported only once it, its events and its registrations are committed together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, false, func, select, tuple_, update

from orchestrator.states import CampaignState, TaskState
from orchestrator.store._campaigns import state_values
from orchestrator.store._database import Database
from orchestrator.store._events import append_events
from orchestrator.store._lease import fence
from orchestrator.store._outbox import add_registrations
from orchestrator.store.records import EventWrite, TaskRecord, WriteBatch
from orchestrator.store.tables import campaigns, task_counts, tasks

SINGLE = -1  # the `point` of a task of a step without foreach


def apply(db: Database, batch: WriteBatch) -> None:
    """Write a runner's batch of task changes and events in one transaction (fenced on the
    batch's runner holding the lease: `LeaseLost`, nothing written, if it does not)."""
    now = time.time()
    with db.transaction() as conn:
        if batch.runner is not None:
            fence(conn, batch.campaign_id, batch.runner, now)
        if batch.tasks:
            _upsert(conn, db.dialect, batch)
        new_events = list(batch.events)
        if batch.campaign_state is not None:
            change = EventWrite(
                now, "campaign", state=batch.campaign_state, message=batch.campaign_message
            )
            if batch.campaign_state == CampaignState.RUNNING:
                new_events.insert(0, change)
            else:
                new_events.append(change)
        if new_events:
            append_events(conn, batch.campaign_id, new_events)
        if batch.outbox:
            add_registrations(conn, batch.campaign_id, batch.outbox, now)
        if batch.campaign_state is not None:
            values = state_values(batch.campaign_state, batch.campaign_message, now)
            if batch.campaign_state == CampaignState.RUNNING:
                values.update(started_at=now, finished_at=None)
            conn.execute(
                update(campaigns).where(campaigns.c.id == batch.campaign_id).values(**values)
            )


def _upsert(conn: Connection, dialect: str, batch: WriteBatch) -> None:
    rows = [{"campaign_id": batch.campaign_id, **task.__dict__} for task in batch.tasks.values()]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(tasks)
    columns = [c for c in rows[0] if c not in ("campaign_id", "step", "point")]
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign_id", "step", "point"],
        set_={c: stmt.excluded[c] for c in columns},
    )
    if dialect == "postgresql":
        # with RETURNING, SQLAlchemy sends the rows as multi-row statements (1000 a page)
        # instead of one statement per row: the counts' statement triggers (migration 0006)
        # then run once per page (row by row, a batch of 5000 took twice as long)
        conn.execute(stmt.returning(tasks.c.point), rows).all()
        return
    conn.execute(stmt, rows)


def counts(db: Database, campaign_id: str) -> dict[str, dict[str, int]]:
    """{step: {state: count}} over the task rows (pending tasks have no row yet), from the
    counts the store keeps with them (`task_counts`): a few rows, whatever the campaign's size."""
    query = select(task_counts.c.step, task_counts.c.state, task_counts.c.n).where(
        task_counts.c.campaign_id == campaign_id, task_counts.c.n != 0
    )
    found: dict[str, dict[str, int]] = {}
    with db.connect() as conn:
        for step, state, n in conn.execute(query):
            found.setdefault(step, {})[state] = int(n)
    return found


def _steps(conn: Connection, campaign_id: str) -> list[str]:
    """The steps that have task rows (from the kept counts, not the task rows)."""
    query = select(task_counts.c.step).where(task_counts.c.campaign_id == campaign_id).distinct()
    return sorted(conn.execute(query).scalars())


def _in_range_query(campaign_id: str, steps: list[str], start: int, stop: int) -> Select[Any]:
    # naming the steps makes it one index range per step (the primary key is
    # campaign, step, point), not a walk over every row of the campaign
    return select(tasks).where(
        tasks.c.campaign_id == campaign_id,
        tasks.c.step.in_(steps),
        tasks.c.point >= start,
        tasks.c.point < stop,
    )


def in_range(db: Database, campaign_id: str, start: int, stop: int) -> list[TaskRecord]:
    """Task rows of points start..stop-1 (foreach steps only)."""
    with db.connect() as conn:
        steps = _steps(conn, campaign_id)
        if not steps:
            return []
        query = _in_range_query(campaign_id, steps, start, stop)
        return [task_record(row) for row in conn.execute(query).mappings()]


def singles(db: Database, campaign_id: str) -> list[TaskRecord]:
    query = select(tasks).where(tasks.c.campaign_id == campaign_id, tasks.c.point == SINGLE)
    with db.connect() as conn:
        steps = _steps(conn, campaign_id)
        query = query.where(tasks.c.step.in_(steps))
        return [task_record(row) for row in conn.execute(query).mappings()] if steps else []


def _max_point_query(campaign_id: str, step: str) -> Select[Any]:
    return select(func.max(tasks.c.point)).where(
        tasks.c.campaign_id == campaign_id, tasks.c.step == step
    )


def max_point(db: Database, campaign_id: str) -> int:
    """The highest point with a task row (-1 if none): one index lookup per step."""
    with db.connect() as conn:
        found = [
            conn.execute(_max_point_query(campaign_id, step)).scalar()
            for step in _steps(conn, campaign_id)
        ]
    return max((int(v) for v in found if v is not None), default=-1)


def get(db: Database, campaign_id: str, step: str, point: int | None) -> TaskRecord | None:
    query = select(tasks).where(
        tasks.c.campaign_id == campaign_id,
        tasks.c.step == step,
        tasks.c.point == (SINGLE if point is None else point),
    )
    with db.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else task_record(row)


def _listed_query(
    campaign_id: str,
    step: str | None,
    state: str | None,
    limit: int,
    after: tuple[str, int] | None,
    columns: Sequence[Any] = (tasks,),
) -> Select[Any]:
    query = select(*columns).where(tasks.c.campaign_id == campaign_id)
    if state is not None:
        query = query.where(tasks.c.state == state)
    if step is not None:
        query = query.where(tasks.c.step == step)
        if after is not None and after[0] == step:
            query = query.where(tasks.c.point > after[1])
        elif after is not None and after[0] > step:
            query = query.where(false())  # the cursor is past this step
    elif after is not None:
        # a row-value comparison: a range of the primary key (or of the state index)
        query = query.where(tuple_(tasks.c.step, tasks.c.point) > tuple_(*after))
    return query.order_by(tasks.c.step, tasks.c.point).limit(limit)


def listed(
    db: Database,
    campaign_id: str,
    *,
    step: str | None,
    state: str | None,
    limit: int,
    after: tuple[str, int] | None,
) -> list[TaskRecord]:
    """A page of task rows by (step, point) after the cursor `after`: an index range read
    of `limit` rows, however deep the page (no OFFSET)."""
    query = _listed_query(campaign_id, step, state, limit, after)
    with db.connect() as conn:
        return [task_record(row) for row in conn.execute(query).mappings()]


def keys(
    db: Database, campaign_id: str, *, state: str, limit: int, after: tuple[str, int] | None
) -> list[tuple[str, int, int, str]]:
    """(step, point, attempt, state) of a page of `listed` (same order and cursor; point
    `SINGLE` for a single step): what a comparison needs, without results and errors."""
    columns = (tasks.c.step, tasks.c.point, tasks.c.attempt, tasks.c.state)
    query = _listed_query(campaign_id, None, state, limit, after, columns)
    with db.connect() as conn:
        return [(s, int(p), int(a or 0), str(st)) for s, p, a, st in conn.execute(query)]


def succeeded_results(
    db: Database, campaign_id: str, step: str, points: Sequence[int]
) -> dict[int, tuple[Any, str | None]]:
    query = select(tasks.c.point, tasks.c.result, tasks.c.result_url).where(
        tasks.c.campaign_id == campaign_id,
        tasks.c.step == step,
        tasks.c.state == TaskState.SUCCEEDED,
        tasks.c.point.in_(list(points)),
    )
    with db.connect() as conn:
        return {int(p): (r, u) for p, r, u in conn.execute(query)}


def task_record(row: Any) -> TaskRecord:
    values = {k: row[k] for k in TaskRecord.__dataclass_fields__}
    if values["point"] == SINGLE:
        values["point"] = None
    return TaskRecord(**values)


# ------------------------------------------------ aggregates for the Campaigns page
# (indexed: `tasks(campaign_id, state, finished_at)`: a page open on a large campaign reads
# only the last minute's tasks and the latest failures)
_FINISHED = (TaskState.SUCCEEDED, TaskState.FAILED)


def _finished_since_query(campaign_id: str, since: float) -> Select[Any]:
    return select(func.count()).where(
        tasks.c.campaign_id == campaign_id,
        tasks.c.state.in_(_FINISHED),
        tasks.c.finished_at >= since,
    )


def finished_since(db: Database, campaign_id: str, since: float) -> int:
    """Tasks that succeeded or failed at `since` or later."""
    with db.engine.connect() as conn:
        return int(conn.execute(_finished_since_query(campaign_id, since)).scalar_one())


def _recent_failures_query(campaign_id: str, n: int) -> Select[Any]:
    return (
        select(tasks.c.step, tasks.c.point, tasks.c.attempt, tasks.c.finished_at, tasks.c.error)
        .where(tasks.c.campaign_id == campaign_id, tasks.c.state == TaskState.FAILED)
        .order_by(tasks.c.finished_at.desc())
        .limit(n)
    )


def recent_failures(db: Database, campaign_id: str, n: int) -> list[TaskRecord]:
    """The `n` tasks that failed last, newest first (step, point, attempt, time, error)."""
    query = _recent_failures_query(campaign_id, n)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        TaskRecord(
            step=step,
            point=None if point == SINGLE else point,
            state=TaskState.FAILED,
            attempt=int(attempt or 0),
            finished_at=finished_at,
            error=error,
        )
        for step, point, attempt, finished_at, error in rows
    ]


def explained(campaign_id: str) -> dict[str, Select[Any]]:
    """The queries a status, a page of tasks, the admission and the dashboard run, by name
    (their plans are checked by the tests and printed by bench/store_fill.py)."""
    step, mid = "simulate", 500_000
    return {
        "counts": select(task_counts.c.step, task_counts.c.state, task_counts.c.n).where(
            task_counts.c.campaign_id == campaign_id
        ),
        "tasks first page": _listed_query(campaign_id, None, None, 500, None),
        "tasks deep page": _listed_query(campaign_id, None, None, 500, (step, mid)),
        "tasks by state, deep page": _listed_query(
            campaign_id, None, "succeeded", 500, (step, mid)
        ),
        "tasks of a step by state": _listed_query(campaign_id, step, "failed", 500, (step, mid)),
        "admission rows": _in_range_query(campaign_id, [step], mid, mid + 1000),
        "admission max point": _max_point_query(campaign_id, step),
        "finished in the last minute": _finished_since_query(campaign_id, time.time() - 60),
        "latest failures": _recent_failures_query(campaign_id, 3),
    }
