"""The three roles of `orchestrator serve`, each holding only what it needs.

- `all-in-one` (the one-machine default): every project; the runner, the projects'
  compute, and (without an external issuer) the embedded development issuer.
- `front-door`: every project's REST API over the shared store; no runner, no scheduler,
  no task, no SSH key. It brings up the instance of a project with work
  (`orchestrator.platform`) and stops idle ones.
- `instance`: one project's runner; every other project answers 404. Tokens are checked
  against an external JWKS (the front door's, or Keycloak's): it never holds a signing key.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from enum import StrEnum

from api.auth import TokenVerifier, is_project
from api.context import AppContext
from api.issuer import DEV_ISSUER, DevIssuer
from orchestrator.dashboard import register_campaigns_page, unregister_campaigns_page
from orchestrator.errors import SettingsError
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)

DEV_JWKS_PATH = "/dev-issuer/jwks.json"


class Role(StrEnum):
    ALL_IN_ONE = "all-in-one"
    FRONT_DOOR = "front-door"
    INSTANCE = "instance"


def check_role(role: Role, project: str | None, settings: Settings) -> None:
    """SettingsError naming what is wrong with this role's options and settings."""
    if role is Role.INSTANCE:
        if project is None or not is_project(project):
            raise SettingsError(f"--role instance needs --project VLAB/PROJECT (got {project!r})")
        if settings.api.projects not in (None, [project]):
            raise SettingsError(
                f"ORCHESTRATOR_API__PROJECTS={settings.api.projects} disagrees with "
                f"--project {project}"
            )
        if not settings.auth.jwks_url:
            raise SettingsError(
                "an instance checks tokens against an issuer's JWKS and never signs any: set "
                "ORCHESTRATOR_AUTH__JWKS_URL and ORCHESTRATOR_AUTH__ISSUER (the front door's "
                f"embedded issuer publishes {DEV_JWKS_PATH}, issuer {DEV_ISSUER!r})"
            )
    elif project is not None:
        raise SettingsError(f"--project is for --role instance, not {role}")


def instance_auth_environment(settings: Settings, front_door_url: str) -> dict[str, str]:
    """How a front door's instances check tokens: its external issuer's, or its own
    development issuer's public keys (fetched over HTTP from the front door)."""
    auth = settings.auth
    if auth.jwks_url:
        env = {"ORCHESTRATOR_AUTH__JWKS_URL": auth.jwks_url}
        env["ORCHESTRATOR_AUTH__ISSUER"] = auth.issuer or ""
    else:
        env = {
            "ORCHESTRATOR_AUTH__JWKS_URL": front_door_url.rstrip("/") + DEV_JWKS_PATH,
            "ORCHESTRATOR_AUTH__ISSUER": DEV_ISSUER,
        }
    env["ORCHESTRATOR_AUTH__AUDIENCE"] = auth.audience
    return env


def start_role(
    role: Role,
    settings: Settings,
    stack: ExitStack,
    verifier: TokenVerifier,
    dev_issuer: DevIssuer | None,
    *,
    project: str | None = None,
    run_campaigns: bool = True,
) -> AppContext:
    """Start what `role` runs; `stack` closes it, in reverse order. An instance gets no
    `dev_issuer` (`check_role` asks for an external JWKS)."""
    check_role(role, project, settings)
    service = Service(settings)
    stack.callback(service.close)
    if role is Role.FRONT_DOOR:
        return _front_door(settings, service, stack, verifier, dev_issuer, run_campaigns)
    projects = {project} if project else set(settings.api.projects or []) or None
    # the Campaigns page in the project's Dask dashboard (before any scheduler starts)
    register_campaigns_page(
        service, next(iter(projects)) if projects and len(projects) == 1 else None
    )
    stack.callback(unregister_campaigns_page)
    runner = Runner(service, projects=projects, poll_interval=settings.api.poll_interval)
    stack.callback(runner.close)
    if run_campaigns:
        runner.start()
    if run_campaigns and settings.provisioner.teardown_interval > 0 and role is Role.ALL_IN_ONE:
        from cluster.provisioner import open_provisioner
        from orchestrator.idle import IdleTeardown

        provisioner = open_provisioner(settings.provisioner, data_dir=settings.data_dir)
        idle = IdleTeardown(provisioner, service, settings.provisioner.teardown_interval)
        stack.callback(idle.start().close)
    return AppContext(
        settings,
        service,
        verifier,
        runner,
        dev_issuer,
        role=role.value,
        projects=frozenset(projects) if role is Role.INSTANCE and projects else None,
    )


def _front_door(
    settings: Settings,
    service: Service,
    stack: ExitStack,
    verifier: TokenVerifier,
    dev_issuer: DevIssuer | None,
    run_campaigns: bool,
) -> AppContext:
    from cluster.provisioner import open_provisioner
    from orchestrator.platform.open import open_front_door
    from orchestrator.platform.stages import status_with_stage

    url = settings.platform.url
    if not url and not settings.auth.jwks_url:  # its instances fetch its issuer's keys there
        raise SettingsError("a front door needs its URL (ORCHESTRATOR_PLATFORM__URL)")
    provisioner = open_provisioner(settings.provisioner, data_dir=settings.data_dir)
    front_door = open_front_door(
        settings, service, provisioner, instance_auth_environment(settings, url or "")
    )
    if run_campaigns:
        stack.callback(front_door.start().close)
    return AppContext(
        settings,
        service,
        verifier,
        None,
        dev_issuer,
        role=Role.FRONT_DOOR.value,
        front_door=front_door,
        status_source=lambda campaign_id: status_with_stage(service, campaign_id),
    )
