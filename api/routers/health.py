"""Liveness, readiness and metrics (no token: no campaign data is served here)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from api.deps import Context
from api.problems import problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the state store is unreachable"}})
async def readyz(context: Context) -> Response:
    try:
        await run_in_threadpool(context.service.ping)
    except Exception:
        return problem(503, "Service Unavailable", "the state store is unreachable")
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
