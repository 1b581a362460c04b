"""One orchestrator instance per project, so the platform's front door can route a project's
requests to its own instance: `local` (subprocesses) or `ecs` (tasks)."""

from cluster.instances.base import Instance, InstanceHandler
from cluster.instances.ecs import EcsInstances
from cluster.instances.errors import InstanceError, InstanceStartError
from cluster.instances.local import LocalInstances

__all__ = [
    "EcsInstances",
    "Instance",
    "InstanceError",
    "InstanceHandler",
    "InstanceStartError",
    "LocalInstances",
]
