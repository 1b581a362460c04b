"""A project's compute: `local` (a Dask LocalCluster) or `slurm` (reached over SSH)."""

from cluster.compute import Compute
from cluster.errors import ClusterConfigError, ClusterError, ClusterStartError
from cluster.local import LocalCompute
from cluster.settings import ClusterSettings, LocalSettings


def open_compute(settings: ClusterSettings) -> Compute:
    """Start (or connect to) the project's compute as the settings describe."""
    if settings.kind == "local":
        return LocalCompute(settings.local)
    if settings.kind == "slurm":
        from cluster.slurm.compute import SlurmCompute

        return SlurmCompute(settings)
    raise ClusterConfigError(f"cluster kind {settings.kind!r} is not available")


__all__ = [
    "ClusterConfigError",
    "ClusterError",
    "ClusterSettings",
    "ClusterStartError",
    "Compute",
    "LocalCompute",
    "LocalSettings",
    "open_compute",
]
