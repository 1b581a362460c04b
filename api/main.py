"""Builds the FastAPI app from settings (nothing happens at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import problems
from api.auth import TokenVerifier
from api.context import AppContext
from api.issuer import DevIssuer, open_dev_issuer
from api.middleware import AccessLog, BodyLimit
from api.routers import campaigns, cluster, events, health, hpc_cluster, tasks
from orchestrator.dashboard import register_campaigns_page, unregister_campaigns_page
from orchestrator.runner import Runner
from orchestrator.service import Service
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


def create_app(settings: Settings | None = None, *, run_campaigns: bool = True) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings)
        verifier, dev_issuer = build_verifier(settings)
        projects = set(settings.api.projects) if settings.api.projects else None
        # the Campaigns page in the project's Dask dashboard (before any scheduler starts)
        register_campaigns_page(
            service, next(iter(projects)) if projects and len(projects) == 1 else None
        )
        runner = Runner(service, projects=projects, poll_interval=settings.api.poll_interval)
        if run_campaigns:
            runner.start()
        idle = None
        if run_campaigns and settings.provisioner.teardown_interval > 0:
            from cluster.provisioner import open_provisioner
            from orchestrator.idle import IdleTeardown

            app.state.provisioner = open_provisioner(
                settings.provisioner, data_dir=settings.data_dir
            )
            idle = IdleTeardown(
                app.state.provisioner, service, settings.provisioner.teardown_interval
            ).start()
        app.state.context = AppContext(settings, service, verifier, runner, dev_issuer)
        try:
            yield
        finally:
            if idle is not None:
                idle.close()
            runner.close()
            unregister_campaigns_page()
            service.close()

    app = FastAPI(title="Workflow Service", version="1", description=DESCRIPTION, lifespan=lifespan)
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
