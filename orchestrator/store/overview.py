"""Small aggregate reads for the dashboard's Campaigns page (indexed: `tasks(campaign_id,
finished_at)`), so that a page open on a large campaign costs two cheap queries."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from orchestrator.states import TaskState
from orchestrator.store import SINGLE, TaskRecord
from orchestrator.store.tables import tasks

_FINISHED = (TaskState.SUCCEEDED, TaskState.FAILED)


def finished_since(engine: Engine, campaign_id: str, since: float) -> int:
    """Tasks that succeeded or failed at `since` or later."""
    query = select(func.count()).where(
        tasks.c.campaign_id == campaign_id,
        tasks.c.state.in_(_FINISHED),
        tasks.c.finished_at >= since,
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def recent_failures(engine: Engine, campaign_id: str, n: int) -> list[TaskRecord]:
    """The `n` tasks that failed last, newest first."""
    query = (
        select(tasks.c.step, tasks.c.point, tasks.c.attempt, tasks.c.finished_at, tasks.c.error)
        .where(tasks.c.campaign_id == campaign_id, tasks.c.state == TaskState.FAILED)
        .order_by(tasks.c.finished_at.desc(), tasks.c.step, tasks.c.point)
        .limit(n)
    )
    with engine.connect() as conn:
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
