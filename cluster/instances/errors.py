"""Errors of the instance handlers."""

from __future__ import annotations

from cluster.errors import ClusterError


class InstanceError(ClusterError):
    """Starting, finding or stopping a project's service instance failed."""


class InstanceStartError(InstanceError):
    """The instance did not start (or did not become healthy in time)."""
