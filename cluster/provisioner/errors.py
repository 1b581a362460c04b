"""Every error the provisioner raises on purpose. Messages name resources (project, subnet,
ARN), never secret values."""

from __future__ import annotations

from cluster.errors import ClusterError


class ProvisionerError(ClusterError):
    """Base of the provisioner's errors."""


class ProvisionerConfigError(ProvisionerError):
    """The request or the provisioner settings are invalid (unknown tier, bad project...)."""


class BackendUnavailable(ProvisionerError):
    """The back end cannot be used here (e.g. the `pcluster` library is not installed)."""


class SubnetPoolExhausted(ProvisionerError):
    """Every subnet of the pool is claimed by another project's cluster."""


class ClusterNotFound(ProvisionerError):
    """No cluster (nor any record of one) for this project."""


class AwsError(ProvisionerError):
    """An AWS call failed; the message names the operation and AWS's error code."""
