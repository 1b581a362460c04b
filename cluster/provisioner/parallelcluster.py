"""The `parallelcluster` back end, through the `pcluster` library's Python API.

The library is heavy and optional (`pip install 'workflow-orchestrator[pcluster]'`): it is
imported lazily, behind `PclusterAdapter`, a seam of three calls that tests replace by a fake
(ParallelCluster cannot run here).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from cluster.provisioner.base import (
    BackendStatus,
    ClusterState,
    Connection,
    CreateRequest,
    map_pcluster_state,
)
from cluster.provisioner.config import to_yaml
from cluster.provisioner.errors import BackendUnavailable, ProvisionerError

logger = logging.getLogger(__name__)

USERNAMES = {"ubuntu2204": "ubuntu", "ubuntu2004": "ubuntu"}  # else ec2-user


class PclusterAdapter(Protocol):
    """The calls we make to ParallelCluster. `describe` returns None for an unknown cluster;
    its dict has `clusterStatus`, and may have `failureReason`/`failures` and `headNode`."""

    def create(self, name: str, config_yaml: str, region: str) -> dict[str, Any]: ...

    def describe(self, name: str, region: str) -> dict[str, Any] | None: ...

    def delete(self, name: str, region: str) -> None: ...


class LibraryAdapter:
    """`pcluster.api`'s functions (`pcluster.lib` in 3.x): create_cluster, describe_cluster,
    delete_cluster."""

    def __init__(self) -> None:
        try:
            import pcluster.lib as pc  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise BackendUnavailable(
                "the parallelcluster back end needs the `pcluster` library: "
                "pip install 'workflow-orchestrator[pcluster]'"
            ) from exc
        self._pc: Any = pc

    def create(self, name: str, config_yaml: str, region: str) -> dict[str, Any]:
        return dict(
            self._pc.create_cluster(
                cluster_name=name, cluster_configuration=config_yaml, region=region
            )
        )

    def describe(self, name: str, region: str) -> dict[str, Any] | None:
        try:
            return dict(self._pc.describe_cluster(cluster_name=name, region=region))
        except Exception as exc:  # the library raises its own NotFound types
            if "NotFound" in type(exc).__name__ or "does not exist" in str(exc):
                return None
            raise

    def delete(self, name: str, region: str) -> None:
        self._pc.delete_cluster(cluster_name=name, region=region)


def lustre_file_system_id(cloudformation: Any, stack_name: str) -> str | None:
    """The FSx for Lustre file system ParallelCluster made for a cluster: the
    `AWS::FSx::FileSystem` of its CloudFormation stack (the stack is named after the cluster);
    None when it has none (`--no-lustre`)."""
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for resource in page.get("StackResourceSummaries") or []:
            if resource.get("ResourceType") == "AWS::FSx::FileSystem":
                return str(resource["PhysicalResourceId"])
    return None


class ParallelClusterBackend:
    kind = "parallelcluster"
    needs_aws_resources = True

    def __init__(
        self,
        region: str,
        os: str = "alinux2023",
        adapter: PclusterAdapter | None = None,
        cloudformation: Any = None,
    ):
        self._region = region
        self._username = USERNAMES.get(os, "ec2-user")
        self._adapter = adapter if adapter is not None else LibraryAdapter()
        self._cloudformation = cloudformation
        self._lustre_ids: dict[str, str | None] = {}  # a ready cluster's, found once

    def create(self, request: CreateRequest) -> BackendStatus:
        existing = self._call("describe", request.name)
        if existing is None:
            self._call("create", request.name, to_yaml(request.config))
            existing = self._call("describe", request.name)
        return self._status(existing, request.key_secret_arn)

    def describe(self, name: str) -> BackendStatus:
        return self._status(self._call("describe", name), None)

    def delete(self, name: str) -> BackendStatus:
        found = self._call("describe", name)
        if found is None:
            return BackendStatus(ClusterState.DELETED)
        if map_pcluster_state(str(found.get("clusterStatus"))) is not ClusterState.DELETING:
            self._call("delete", name)
        return self._status(self._call("describe", name), None)

    def _call(self, operation: str, name: str, *args: Any) -> Any:
        try:
            return getattr(self._adapter, operation)(name, *args, region=self._region)
        except ProvisionerError:
            raise
        except Exception as exc:
            raise ProvisionerError(f"ParallelCluster {operation} of {name} failed: {exc}") from exc

    def _status(self, found: dict[str, Any] | None, key_secret_arn: str | None) -> BackendStatus:
        if found is None:
            return BackendStatus(ClusterState.DELETED)
        status = str(found.get("clusterStatus", ""))
        state = map_pcluster_state(status)
        reason = None
        if state is ClusterState.FAILED:
            failures = found.get("failures") or []
            reason = found.get("failureReason") or "; ".join(
                str(f.get("failureReason", f)) if isinstance(f, dict) else str(f) for f in failures
            )
            reason = f"{status}: {reason}" if reason else status
        head = found.get("headNode") or {}
        connection = None
        if state is ClusterState.READY and head.get("privateIpAddress"):
            connection = Connection(
                host=str(head["privateIpAddress"]),
                username=self._username,
                key_secret_arn=key_secret_arn,
            )
        details: dict[str, Any] = {"clusterStatus": status}
        if connection is not None:
            details["fsx_file_system_id"] = self._lustre(str(found.get("clusterName") or ""))
        return BackendStatus(state, reason, connection, details)

    def _lustre(self, name: str) -> str | None:
        """The cluster's Lustre file system (for the service's FSx exports); None when it
        has none or CloudFormation cannot tell (the exports then stay off)."""
        if not name:
            return None
        if name in self._lustre_ids:
            return self._lustre_ids[name]
        try:
            if self._cloudformation is None:
                import boto3

                self._cloudformation = boto3.client("cloudformation", region_name=self._region)
            found = self._lustre_ids[name] = lustre_file_system_id(self._cloudformation, name)
            return found
        except Exception as exc:
            logger.warning("could not find the Lustre file system of %s: %s", name, exc)
            return None
