"""A campaign's event history: JSON pages, or a live `text/event-stream`.

The live stream ends when the campaign has ended and every event was sent, when the client
goes away, or when its caller may no longer read it (`api.stream_access`: the token expired,
or, checked every `RECHECK_SECONDS`, no longer verifies or no longer names the project); the
last ends with an `event: error` whose data is a problem (401, or 404 / 403 as a new request
would get), without an `id`,
so a client that gets a new token resumes with the same `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CampaignDep, Context, ProjectDep, bearer_token
from api.errors import ApiError, AuthError, NotFound
from api.schemas import EventPage, problems
from api.stream_access import StreamAccess
from orchestrator.service import Service

router = APIRouter(
    prefix="/v1/projects/{vlab_id}/{project_id}/campaigns/{campaign_id}",
    tags=["events"],
    responses=problems(400, 401, 404, 422),
)
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 30.0


@router.get(
    "/events",
    response_model=EventPage,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(
    request: Request,
    record: CampaignDep,
    scope: ProjectDep,
    context: Context,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> Any:
    """Events after `after`, numbered from 1. With `Accept: text/event-stream` the answer is
    live (server-sent events, `id` = event number) until the campaign ends, or until the token
    expires (a last `event: error`); reconnecting with `Last-Event-ID` resumes after that
    event."""
    service = context.service
    if "text/event-stream" in request.headers.get("accept", ""):
        start = after
        if last_event_id and last_event_id.isdigit() and len(last_event_id) <= 18:
            start = int(last_event_id)
        access = StreamAccess(
            context.verifier, bearer_token(request), scope.project, scope.user, RECHECK_SECONDS
        )
        return StreamingResponse(
            _stream(request, service, access, record.id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    rows = await run_in_threadpool(service.events, record.id, after=after, limit=limit)
    return {"items": [e.__dict__ for e in rows], "next_after": rows[-1].seq if rows else after}


async def _stream(
    request: Request, service: Service, access: StreamAccess, campaign_id: str, after: int
) -> AsyncIterator[str]:
    idle = 0.0
    while True:
        refusal = await access.refusal()
        if refusal is not None:
            yield _error_event(refusal, request.url.path)
            return
        rows, ended = await run_in_threadpool(service.event_batch, campaign_id, after)
        for event in rows:
            after = event.seq
            data = json.dumps(event.to_json())
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
        if rows:
            idle = 0.0
            continue
        if ended or await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"


def _error_event(error: ApiError, path: str) -> str:
    """The problem a new request would get, as the stream's last event (no `id`)."""
    status, title = next((s, t) for kind, s, t in _STATUSES if isinstance(error, kind))
    body = {"type": "about:blank", "title": title, "status": status, "detail": error.reason}
    return f"event: error\ndata: {json.dumps({**body, 'instance': path})}\n\n"


_STATUSES: tuple[tuple[type[ApiError], int, str], ...] = (
    (AuthError, 401, "Unauthorized"),
    (NotFound, 404, "Not Found"),
    (ApiError, 403, "Forbidden"),
)
