"""Campaigns of a project: submit, list, get, delete, cancel, restart, extend, throttle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import ID, CampaignDep, Context, ProjectDep
from api.errors import NotFound
from api.routers import _cursor
from api.schemas import (
    SPEC_EXAMPLE,
    CampaignPage,
    CampaignStatus,
    CancelRequest,
    ExtendRequest,
    ThrottleRequest,
    problems,
)
from api.status_cache import matches_etag
from orchestrator.errors import CampaignNotFound

router = APIRouter(
    prefix="/v1/projects/{vlab_id}/{project_id}/campaigns",
    tags=["campaigns"],
    responses=problems(400, 401, 404, 422),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignStatus,
    responses=problems(403, 413),
)
async def submit(
    scope: ProjectDep,
    context: Context,
    response: Response,
    spec: Annotated[dict[str, Any], Body(openapi_examples={"fi-curve": {"value": SPEC_EXAMPLE}})],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Submit a campaign (the spec document, as in a YAML file). Validated before anything is
    stored; 422 names each offending field. The same `Idempotency-Key` returns the same
    campaign (200)."""
    scope.require("submit")
    service = context.service
    if idempotency_key is not None:
        existing = await run_in_threadpool(service.submitted, scope.project, idempotency_key)
        if existing is not None:
            response.status_code = status.HTTP_200_OK
            return await run_in_threadpool(service.status, existing)
    campaign_id = await run_in_threadpool(
        service.submit_document,
        spec,
        project=scope.project,
        owner=scope.user.subject,
        idempotency_key=idempotency_key,
    )
    context.statuses.invalidate(campaign_id)
    context.wake()
    response.headers["Location"] = f"{_base(scope.project)}/{campaign_id}"
    return await run_in_threadpool(service.status, campaign_id)


@router.get("", response_model=CampaignPage)
async def list_campaigns(
    scope: ProjectDep,
    context: Context,
    state: Annotated[str | None, Query(max_length=16)] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Campaigns of the project, newest first."""
    before = _cursor.decode(cursor, float, str) if cursor else None
    items = await run_in_threadpool(
        context.service.list_campaigns,
        project=scope.project,
        state=state,
        name=name,
        limit=limit + 1,
        before=before,
    )
    last = items[limit - 1] if len(items) > limit else None
    return {
        "items": items[:limit],
        "next_cursor": _cursor.encode([last["created_at"], last["id"]]) if last else None,
    }


@router.get(
    "/{campaign_id}",
    response_model=CampaignStatus,
    responses={304: {"description": "Not modified: `If-None-Match` names the current ETag"}},
)
async def get_campaign(
    scope: ProjectDep,
    context: Context,
    campaign_id: Annotated[str, Path(pattern=ID)],
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """The campaign's status, with an `ETag`: pollers may send it back in `If-None-Match` and
    get 304 while nothing changed. Served from a cache at most 0.5 s old (a cancel, restart or
    delete made through this API shows at once)."""
    statuses = context.statuses
    entry = statuses.fresh(campaign_id)
    if entry is None:
        try:
            entry = await statuses.get(campaign_id)
        except CampaignNotFound as exc:
            raise NotFound(f"no campaign {campaign_id} in {scope.project}") from exc
    if entry.project != scope.project:
        raise NotFound(f"no campaign {campaign_id} in {scope.project}")
    headers = {"ETag": entry.etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and matches_etag(if_none_match, entry.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    # already JSON: returned as is, not re-validated against the response model
    return Response(entry.body, media_type="application/json", headers=headers)


@router.delete(
    "/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(403, 409)
)
async def delete_campaign(scope: ProjectDep, record: CampaignDep, context: Context) -> Response:
    """Delete a finished campaign's records (admins only; its results stay where they are)."""
    scope.require("delete")
    await run_in_threadpool(context.service.delete, record.id)
    context.statuses.invalidate(record.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{campaign_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=CampaignStatus
)
async def cancel(
    scope: ProjectDep,
    record: CampaignDep,
    context: Context,
    request: Annotated[CancelRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Cancel the campaign, or only a step (and what needs it) or a point."""
    scope.require("submit")
    request = request or CancelRequest(step=None, point=None)
    await run_in_threadpool(
        context.service.cancel, record.id, step=request.step, point=request.point
    )
    context.statuses.invalidate(record.id)
    return await run_in_threadpool(context.service.status, record.id)


@router.post(
    "/{campaign_id}/restart", status_code=status.HTTP_202_ACCEPTED, response_model=CampaignStatus
)
async def restart(scope: ProjectDep, record: CampaignDep, context: Context) -> dict[str, Any]:
    """Run failed and cancelled tasks again (and what they held)."""
    scope.require("submit")
    await run_in_threadpool(context.service.restart, record.id)
    context.statuses.invalidate(record.id)
    context.wake()
    return await run_in_threadpool(context.service.status, record.id)


@router.post(
    "/{campaign_id}/extend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CampaignStatus,
    responses=problems(409),
)
async def extend(
    scope: ProjectDep, record: CampaignDep, context: Context, request: ExtendRequest
) -> dict[str, Any]:
    """Add points to the campaign, running or finished: a sub-grid of the same parameters
    (`parameters`, axes as in a spec, with `sweep`) or explicit `points`. New points are
    numbered after the others; finished work is untouched; fan-in steps run again. Invalid
    points → 422 with the same field paths as a spec (`extensions.N.parameters…`)."""
    scope.require("submit")
    await run_in_threadpool(
        context.service.extend,
        record.id,
        parameters=request.parameters,
        sweep=request.sweep,
        points=request.points,
    )
    context.statuses.invalidate(record.id)
    context.wake()
    return await run_in_threadpool(context.service.status, record.id)


@router.post(
    "/{campaign_id}/throttle",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CampaignStatus,
    responses=problems(403, 409),
)
async def throttle(
    scope: ProjectDep, record: CampaignDep, context: Context, request: ThrottleRequest
) -> dict[str, Any]:
    """Change the campaign's concurrency while it runs: without `step`, at most `limit`
    points in flight (never above the service's window); with a batch `step`, at most
    `limit` tasks of each of its job arrays at once, queued arrays included. Kept with the
    campaign (a resumed campaign keeps it). A finished campaign → 409; a step that is not
    one of its batch steps → 422 naming `step`."""
    scope.require("submit")
    status_now = await run_in_threadpool(
        context.service.throttle, record.id, request.limit, step=request.step
    )
    context.statuses.invalidate(record.id)
    return status_now


def _base(project: str) -> str:
    return f"/v1/projects/{project}/campaigns"
