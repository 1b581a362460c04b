"""A campaign's tasks and their logs.

On a front door, the logs of a campaign whose results are on the project's cluster
(`cluster://…`) are read by the project's instance (the front door holds no cluster key):
the request is forwarded to it with the caller's token; 503 while it does not run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CampaignDep, Context
from api.forward import InstanceUnreachable, forward_get
from api.problems import problem
from api.routers import _cursor
from api.schemas import TaskPage, problems
from orchestrator.results.location import CLUSTER_SCHEME
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


@router.get(
    "/tasks/{task}/logs",
    response_class=PlainTextResponse,
    responses={503: {"description": "the project's instance, which reads them, is not running"}},
)
async def task_logs(
    record: CampaignDep,
    context: Context,
    request: Request,
    task: Annotated[str, Path(max_length=120, description="STEP or STEP:POINT")],
) -> Response:
    """A task's attempts, error and log files (stdout, stderr, ctx.log), as text."""
    if context.front_door is not None and record.results_url.startswith(CLUSTER_SCHEME):
        state = await run_in_threadpool(context.front_door.state, record.project)
        if state.instance == "running" and state.url:
            try:
                forwarded = await forward_get(request, state.url)
            except InstanceUnreachable:
                pass
            else:
                return Response(
                    forwarded.content,
                    status_code=forwarded.status_code,
                    media_type=forwarded.headers.get("content-type"),
                )
        detail = f"the logs of {record.id} are on the cluster of {record.project}, read by "
        detail += f"its instance, which is {state.instance}: ask again once it runs"
        return problem(503, "Service Unavailable", detail)
    text = await run_in_threadpool(context.service.logs, record.id, task)
    return PlainTextResponse(text)
