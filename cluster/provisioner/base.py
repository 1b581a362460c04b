"""The back-end interface (create / describe / delete a cluster) and its one state enum."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol


class ClusterState(StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


# ParallelCluster's clusterStatus (CloudFormation stack states) -> ours.
PCLUSTER_STATES: Final[dict[str, ClusterState]] = {
    "CREATE_IN_PROGRESS": ClusterState.PROVISIONING,
    "CREATE_COMPLETE": ClusterState.READY,
    "CREATE_FAILED": ClusterState.FAILED,
    "ROLLBACK_IN_PROGRESS": ClusterState.FAILED,
    "ROLLBACK_COMPLETE": ClusterState.FAILED,
    "ROLLBACK_FAILED": ClusterState.FAILED,
    "UPDATE_IN_PROGRESS": ClusterState.READY,
    "UPDATE_COMPLETE": ClusterState.READY,
    "UPDATE_ROLLBACK_COMPLETE": ClusterState.READY,
    "UPDATE_FAILED": ClusterState.READY,  # the old cluster still runs
    "DELETE_IN_PROGRESS": ClusterState.DELETING,
    "DELETE_FAILED": ClusterState.FAILED,
    "DELETE_COMPLETE": ClusterState.DELETED,
}


def map_pcluster_state(status: str) -> ClusterState:
    """Unknown states count as still provisioning: never as deleted (that frees the subnet)."""
    return PCLUSTER_STATES.get(status, ClusterState.PROVISIONING)


@dataclass(frozen=True)
class Connection:
    """How the service reaches the cluster's head node (the key: a file or a secret's ARN)."""

    host: str
    port: int = 22
    username: str = "ec2-user"
    known_hosts: str | None = None
    key_file: str | None = None
    key_secret_arn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class BackendStatus:
    state: ClusterState
    reason: str | None = None
    connection: Connection | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateRequest:
    name: str  # the back end's cluster name (config.cluster_name)
    project: str
    config: dict[str, Any]
    key_secret_arn: str | None = None


class Backend(Protocol):
    """A place clusters come from. Every method is safe to repeat."""

    kind: str

    def create(self, request: CreateRequest) -> BackendStatus:
        """Start creating the cluster (or report the one that exists under that name)."""
        ...

    def describe(self, name: str) -> BackendStatus:
        """The cluster's state; DELETED when the back end knows no such cluster."""
        ...

    def delete(self, name: str) -> BackendStatus:
        """Start deleting it; DELETED when it is already gone."""
        ...

    @property
    def needs_aws_resources(self) -> bool:
        """Whether clusters need a subnet from the pool and a key pair (AWS back ends)."""
        ...
