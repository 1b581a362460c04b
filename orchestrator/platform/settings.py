"""Settings of the front door's platform: which instance handler starts projects' instances,
and how the front door waits for clusters and instances."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cluster.environment import check_names

INSTANCE_ENV = [
    "ORCHESTRATOR_CONFIG",
    "ORCHESTRATOR_CLUSTER__*",
    "ORCHESTRATOR_ENGINE__*",
    "ORCHESTRATOR_API__*",
    "ORCHESTRATOR_KG__*",
    "ORCHESTRATOR_RESULTS_URL",
    "ORCHESTRATOR_RESULTS_ROOTS",
    "ORCHESTRATOR_SHUTDOWN_GRACE",
]
"""What a `local` instance takes from the front door's environment besides the allow-list
of `cluster.environment` (PATH, HOME, PYTHONPATH, AWS_REGION, …): the settings of an
instance. Never the front door's store URL, its provisioner's or platform's settings, its
AWS credentials or its issuer: the instance gets its own store URL and data folder."""


class EcsInstanceSettings(BaseModel):
    """`ecs`: each instance is a task of the service's image (its task definition holds the
    store's per-project credentials; the front door passes none of its own)."""

    model_config = ConfigDict(extra="forbid")

    cluster: str = "orchestrator"
    task_definition: str = "orchestrator-instance"
    container: str = "orchestrator"
    launch_type: str = "FARGATE"
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    port: int = Field(default=8000, ge=1, le=65535)


class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: Literal["local", "ecs"] = "local"
    # `local`: pid files, logs and each instance's data folder (default: DATA_DIR/instances)
    state_dir: Path | None = None
    ecs: EcsInstanceSettings = Field(default_factory=EcsInstanceSettings)
    # how often the front door looks for projects with work and no instance, and for idle
    # ones (a submit through the front door looks at once)
    interval: float = Field(default=5.0, gt=0)
    # how often it looks for idle projects (instance stopped, then cluster torn down after
    # the provisioner's `idle_timeout` without campaigns)
    idle_interval: float = Field(default=30.0, gt=0)
    # how long a project's cluster may take to become ready, and its instance to start
    cluster_timeout: float = Field(default=3600.0, gt=0)
    instance_timeout: float = Field(default=120.0, gt=0)
    # the provisioner's tier for a project's cluster when its campaign names no partition
    default_tier: str = "small"
    project_tiers: dict[str, str] = Field(default_factory=dict)  # "vlab/project" -> tier
    # the front door's own URL as its instances reach it (their tokens are checked against
    # its JWKS when it signs them itself); default: from `serve`'s host and port
    url: str | None = None
    # `local`: names (or `PREFIX*`) of the front door's environment its instances inherit
    # besides INSTANCE_ENV and the allow-list (PATH, HOME, PYTHONPATH, …), e.g. the
    # AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of a results bucket on a development machine
    instance_env: list[str] = Field(default_factory=list)

    @field_validator("instance_env")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return check_names(names)
