"""Builds the FastAPI app from settings (nothing happens at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api import problems
from api.auth import TokenVerifier
from api.issuer import DevIssuer, open_dev_issuer
from api.middleware import AccessLog, BodyLimit
from api.roles import Role, check_role, start_role
from api.routers import campaigns, cluster, events, health, hpc_cluster, tasks
from api.status_fast_path import StatusFastPath
from orchestrator.settings import Settings, load_settings

DESCRIPTION = """Runs simulation campaigns of a project's users.

Every `/v1/projects/{vlab_id}/{project_id}/…` route needs an OIDC bearer token whose `groups`
claim has `/proj/{vlab_id}/{project_id}/{role}`: members read and submit, admins also
delete. A project you are not a member of answers 404, as if it did not exist.
Errors are RFC 9457 problem details (`application/problem+json`)."""


# A verified token is trusted this long (never past its exp) without another signature check,
# whichever the issuer (an external issuer's JWKS is itself cached for 10 minutes).
REMEMBER_TOKENS = 30.0


def build_verifier(settings: Settings) -> tuple[TokenVerifier, DevIssuer | None]:
    auth = settings.auth
    if auth.jwks_url:
        if not auth.issuer:
            from orchestrator.errors import SettingsError

            raise SettingsError("ORCHESTRATOR_AUTH__ISSUER is required with a JWKS URL")
        verifier = TokenVerifier(
            issuer=auth.issuer,
            audience=auth.audience,
            jwks_url=auth.jwks_url,
            algorithms=auth.algorithms,
            leeway=auth.leeway,
            remember_seconds=REMEMBER_TOKENS,
        )
        return verifier, None
    issuer = open_dev_issuer(settings.data_dir, auth)  # refused where it is forbidden
    verifier = issuer.verifier(auth.audience, REMEMBER_TOKENS, auth.leeway)
    return verifier, issuer


class ServiceApp(FastAPI):
    """The service's app: cached status answers first (api/status_fast_path.py), before
    FastAPI's routing and the middleware; every other request as FastAPI serves it."""

    fast_path = StatusFastPath()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = getattr(self.state, "context", None)
        if not await self.fast_path.answer(scope, send, context):
            await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    run_campaigns: bool = True,
    role: Role | str = Role.ALL_IN_ONE,
    project: str | None = None,
) -> FastAPI:
    """The app of `role` (api/roles.py); `project` is an instance's. Without
    `run_campaigns`, routes only: nothing runs campaigns nor brings up instances."""
    settings = settings or load_settings()
    role = Role(role)
    check_role(role, project, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            verifier, dev_issuer = build_verifier(settings)
            app.state.context = start_role(
                role,
                settings,
                stack,
                verifier,
                dev_issuer if role is not Role.INSTANCE else None,
                project=project,
                run_campaigns=run_campaigns,
            )
            if app.state.context.front_door is not None:  # hpc_cluster's routes share it
                app.state.provisioner = app.state.context.front_door.provisioner
            yield

    app = ServiceApp(
        title="Workflow Service", version="1", description=DESCRIPTION, lifespan=lifespan
    )
    problems.install(app)
    for module in (campaigns, tasks, events, cluster, hpc_cluster, health):
        app.include_router(module.router)

    @app.get("/dev-issuer/jwks.json", tags=["health"], include_in_schema=True)
    async def dev_jwks() -> dict[str, Any]:
        """The embedded development issuer's public keys (empty with an external issuer)."""
        issuer = app.state.context.dev_issuer
        return issuer.jwks if issuer is not None else {"keys": []}

    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    app.add_middleware(AccessLog)
    return app
