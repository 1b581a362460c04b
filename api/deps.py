"""Annotated dependencies: the current user, the project they act in, a campaign of it.

Isolation rule: for a project the user is not a member of, every route answers 404, as if
the project did not exist (nothing about other projects leaks, not even their existence).
A project's instance answers 404 for every other project, whoever asks.
A member lacking a permission (e.g. `delete` needs the admin role) gets 403.

All of them are `async def`: FastAPI runs a plain `def` dependency in its thread pool, and
that hop costs more than the work here. What may block (a signature check that may fetch the
issuer's keys, a store read) goes to the thread pool explicitly; a remembered token does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.context import AppContext
from api.errors import Forbidden, MissingToken, NotFound
from orchestrator.errors import CampaignNotFound
from orchestrator.store import CampaignRecord

ID = r"^[A-Za-z0-9_-]{1,100}$"


async def get_context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(get_context)]


BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", flags=re.IGNORECASE)


def bearer_token(request: Request) -> str:
    """The request's bearer token; MissingToken without one."""
    match = BEARER.match(request.headers.get("authorization", ""))
    if not match:
        raise MissingToken("a bearer token is required")
    return match.group(1)


async def current_user(request: Request, context: Context) -> Principal:
    token = bearer_token(request)
    verifier = context.verifier
    principal = verifier.remembered(token)
    if principal is None:
        principal = await run_in_threadpool(verifier.verify, token)
    request.state.subject = principal.subject
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def service_identity(
    user: CurrentUser,
    context: Context,
    vlab_id: Annotated[str, Path(pattern=ID)],
    project_id: Annotated[str, Path(pattern=ID)],
) -> Principal:
    """The service's own identity, for internal project routes. An end user's token gets
    403 in a project of theirs, and 404 elsewhere (the isolation rule above)."""
    if not context.serves(f"{vlab_id}/{project_id}"):
        raise NotFound(f"no project {vlab_id}/{project_id}")
    if user.is_service:
        return user
    if not user.roles(f"{vlab_id}/{project_id}"):
        raise NotFound(f"no project {vlab_id}/{project_id}")
    raise Forbidden("only the service's own identity may call this route")


ServiceIdentity = Annotated[Principal, Depends(service_identity)]


@dataclass(frozen=True)
class ProjectScope:
    project: str
    user: Principal

    def require(self, permission: str) -> None:
        if not self.user.can(self.project, permission):
            raise Forbidden(f"your role in {self.project} does not allow {permission}")


async def project_scope(
    user: CurrentUser,
    context: Context,
    vlab_id: Annotated[str, Path(pattern=ID)],
    project_id: Annotated[str, Path(pattern=ID)],
) -> ProjectScope:
    project = f"{vlab_id}/{project_id}"
    if not user.roles(project) or not context.serves(project):
        raise NotFound(f"no project {project}")
    scope = ProjectScope(project, user)
    scope.require("read")
    return scope


ProjectDep = Annotated[ProjectScope, Depends(project_scope)]


async def campaign_of_project(
    scope: ProjectDep, context: Context, campaign_id: Annotated[str, Path(pattern=ID)]
) -> CampaignRecord:
    try:
        record = await run_in_threadpool(context.service.campaign, campaign_id)
    except CampaignNotFound as exc:
        raise NotFound(f"no campaign {campaign_id} in {scope.project}") from exc
    if record.project != scope.project:
        raise NotFound(f"no campaign {campaign_id} in {scope.project}")
    return record


CampaignDep = Annotated[CampaignRecord, Depends(campaign_of_project)]
