"""Every error the cluster package raises on purpose."""


class ClusterError(Exception):
    """Base of the cluster package's errors."""


class ClusterConfigError(ClusterError):
    """The cluster settings are invalid or name a kind that is not available."""


class ClusterStartError(ClusterError):
    """The project's compute could not be started or reached."""
