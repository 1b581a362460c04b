"""The front door's instance handler and platform, from settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cluster.instances import EcsInstances, InstanceHandler, LocalInstances
from cluster.instances.base import instance_slug
from cluster.provisioner import Provisioner
from orchestrator.platform.front_door import FrontDoor
from orchestrator.platform.settings import INSTANCE_ENV
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.store import project_database_url


def open_instances(settings: Settings) -> InstanceHandler:
    platform = settings.platform
    if platform.instances == "local":
        return LocalInstances(
            local_state_dir(settings),
            inherit=[*INSTANCE_ENV, *platform.instance_env],
            start_timeout=platform.instance_timeout,
        )
    import boto3

    ecs = platform.ecs
    return EcsInstances(
        boto3.client("ecs", region_name=settings.provisioner.region),
        cluster=ecs.cluster,
        task_definition=ecs.task_definition,
        container=ecs.container,
        launch_type=ecs.launch_type,
        subnets=ecs.subnets,
        security_groups=ecs.security_groups,
        port=ecs.port,
    )


def local_state_dir(settings: Settings) -> Path:
    return settings.platform.state_dir or settings.data_dir / "instances"


def open_front_door(
    settings: Settings,
    service: Service,
    provisioner: Provisioner,
    auth_environment: Mapping[str, str],
    instances: InstanceHandler | None = None,
) -> FrontDoor:
    """The front door's platform (not started). Every instance gets `auth_environment` (how
    to check tokens: never a signing key); a local one also the store's URL for its project
    (its own role on PostgreSQL) and a data folder of its own (the front door's holds the
    development issuer's key). An ECS instance's store credentials come from its task
    definition: task overrides are no place for a secret."""
    handler = instances or open_instances(settings)
    local = isinstance(handler, LocalInstances)

    def environment(project: str) -> dict[str, str]:
        env = dict(auth_environment)
        if local:
            data_dir = local_state_dir(settings) / instance_slug(project) / "data"
            env["ORCHESTRATOR_DATA_DIR"] = str(data_dir)
            # on PostgreSQL, the project's own role: it reaches only the project's rows
            env["ORCHESTRATOR_DB_URL"] = project_database_url(settings, project)
        return env

    return FrontDoor(service, provisioner, handler, settings.platform, environment)
