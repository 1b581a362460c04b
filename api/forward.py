"""A front door's way to what only a project's instance knows (its Dask workers, its
cluster's files): the same GET, sent to the instance's URL with the caller's own token.

The instance checks that token again (against the same issuer's keys), so forwarding
grants nothing the caller did not have; nothing is forwarded for a project the caller is
not a member of (the route's dependencies have answered 404 before).
"""

from __future__ import annotations

import logging

import httpx
from fastapi import Request

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class InstanceUnreachable(Exception):
    """The instance did not answer (starting, stopping, or gone)."""


async def forward_get(request: Request, instance_url: str) -> httpx.Response:
    """The instance's answer to this request's path and query."""
    url = instance_url.rstrip("/") + request.url.path
    headers = {"authorization": request.headers.get("authorization", "")}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            return await client.get(url, params=request.query_params, headers=headers)
    except httpx.HTTPError as exc:
        logger.warning("forwarding to the instance at %s failed: %s", instance_url, exc)
        raise InstanceUnreachable(str(exc)) from exc
