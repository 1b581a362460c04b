"""Errors as RFC 9457 problem details (application/problem+json), never stack traces."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, get_route_path

from api.errors import ApiError, AuthError, Forbidden, MissingToken, NotFound
from cluster import ClusterError
from orchestrator.errors import (
    CampaignNotFound,
    InvalidRequest,
    InvalidThrottle,
    OrchestratorError,
    SpecError,
    StoreError,
    TaskNotFound,
)

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(MissingToken)
    async def _missing(request: Request, exc: MissingToken) -> JSONResponse:
        return problem(
            401,
            "Unauthorized",
            str(exc),
            instance=request.url.path,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return problem(
            401,
            "Unauthorized",
            str(exc),
            instance=request.url.path,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return problem(403, "Forbidden", str(exc), instance=request.url.path)

    @app.exception_handler(NotFound)
    @app.exception_handler(CampaignNotFound)
    @app.exception_handler(TaskNotFound)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return problem(404, "Not Found", str(exc), instance=request.url.path)

    @app.exception_handler(SpecError)
    async def _spec(request: Request, exc: SpecError) -> JSONResponse:
        errors = [{"field": i.path, "message": i.message} for i in exc.issues]
        return problem(
            422, "Invalid campaign spec", str(exc), instance=request.url.path, errors=errors
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return problem(
            422,
            "Invalid request",
            "the request does not match the API",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(InvalidThrottle)
    async def _throttle(request: Request, exc: InvalidThrottle) -> JSONResponse:
        errors = [{"field": exc.field, "message": str(exc)}]
        return problem(422, "Invalid request", str(exc), instance=request.url.path, errors=errors)

    @app.exception_handler(InvalidRequest)
    async def _conflict(request: Request, exc: InvalidRequest) -> JSONResponse:
        return problem(409, "Conflict", str(exc), instance=request.url.path)

    @app.exception_handler(StoreError)
    @app.exception_handler(ClusterError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.error("service unavailable: %s", exc)
        return problem(
            503,
            "Service Unavailable",
            "a backing service is unavailable",
            instance=request.url.path,
        )

    @app.exception_handler(ApiError)
    @app.exception_handler(OrchestratorError)
    async def _other(request: Request, exc: Exception) -> JSONResponse:
        return problem(400, "Bad Request", str(exc), instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return problem(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(
            500, "Internal Server Error", "an unexpected error occurred", instance=request.url.path
        )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (the router's own 405 names only
    those of the first route matching the path, e.g. GET of GET+DELETE /campaigns/{id})."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= route_methods
    return sorted(methods)


def _leaf_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The routes of the app, with those of included routers (FastAPI keeps an included
    router whole, as `original_router`, or Starlette-style as a Mount's `routes`)."""
    leaves: list[BaseRoute] = []
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is None and not hasattr(route, "path_regex"):
            inner = getattr(route, "routes", None)
        leaves += _leaf_routes(inner) if inner is not None else [route]
    return leaves


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
