"""A campaign's tasks and their logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CampaignDep, Context
from api.routers import _cursor
from api.schemas import TaskPage, problems
from orchestrator.states import TaskState

router = APIRouter(
    prefix="/v1/projects/{vlab_id}/{project_id}/campaigns/{campaign_id}",
    tags=["tasks"],
    responses=problems(400, 401, 404, 422),
)


@router.get("/tasks", response_model=TaskPage)
async def list_tasks(
    record: CampaignDep,
    context: Context,
    step: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[TaskState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Tasks that have been queued at least once (pending tasks have no record yet)."""
    after = _cursor.decode(cursor, str, int) if cursor else None

    rows = await run_in_threadpool(
        context.service.tasks, record.id, step=step, state=state, limit=limit + 1, after=after
    )
    last = rows[limit - 1] if len(rows) > limit else None
    point = -1 if last is None or last["point"] is None else last["point"]
    return {
        "items": rows[:limit],
        "next_cursor": _cursor.encode([last["step"], point]) if last else None,
    }


@router.get("/tasks/{task}/logs", response_class=PlainTextResponse)
async def task_logs(
    record: CampaignDep,
    context: Context,
    task: Annotated[str, Path(max_length=120, description="STEP or STEP:POINT")],
) -> str:
    """A task's attempts, error and log files (stdout, stderr, ctx.log), as text."""
    return await run_in_threadpool(context.service.logs, record.id, task)
