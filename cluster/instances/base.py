"""One orchestrator instance per project: what a handler reports, and its interface."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

PROJECTS_ENV = "ORCHESTRATOR_API__PROJECTS"  # `serve` then runs only this project's campaigns
PROJECT_TAG = "orchestrator-project"


def projects_env(project: str) -> str:
    return json.dumps([project])


def instance_arguments(project: str, host: str, port: int) -> list[str]:
    """What follows `orchestrator serve` to run the project's instance."""
    return ["--role", "instance", "--project", project, "--host", host, "--port", str(port)]


def instance_slug(project: str) -> str:
    """A short, stable, name-safe id for the project (pid files, ECS startedBy)."""
    return "orch-" + hashlib.sha256(project.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Instance:
    project: str
    kind: str  # local | ecs
    id: str  # a pid, or an ECS task ARN
    state: str  # running | pending | ...
    url: str | None = None  # where the front door routes the project's requests


class InstanceHandler(Protocol):
    def start(self, project: str, environment: Mapping[str, str] | None = None) -> Instance:
        """The project's instance: the running one, or a new one with `environment` added
        (e.g. `Provisioner.cluster_environment(project)`: its cluster and Lustre)."""
        ...

    def find(self, project: str) -> Instance | None: ...

    def stop(self, project: str) -> bool:
        """Stop the project's instance; False if none ran. Safe to repeat."""
        ...
