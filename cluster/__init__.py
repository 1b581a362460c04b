"""A project's compute: `local` (a Dask scheduler and workers on this machine, each in a process
of its own) or `slurm` (reached over SSH).

The names below are imported on first use: a scheduler or workers process
(`python -m cluster.scheduler.child`) imports this package too, and needs neither the
settings models (pydantic) nor the local compute's starter (~0.4 s of its start)."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from cluster.errors import ClusterConfigError, ClusterError, ClusterStartError

if TYPE_CHECKING:
    from cluster.compute import Compute
    from cluster.local import LocalCompute
    from cluster.settings import ClusterSettings, LocalSettings

_LAZY = {
    "Compute": "cluster.compute",
    "LocalCompute": "cluster.local",
    "ClusterSettings": "cluster.settings",
    "LocalSettings": "cluster.settings",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'cluster' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def open_compute(settings: ClusterSettings) -> Compute:
    """Start (or connect to) the project's compute as the settings describe."""
    if settings.kind == "local":
        from cluster.local import LocalCompute

        return LocalCompute(settings.local, worker_env=settings.worker_env)
    if settings.kind == "slurm":
        from cluster.slurm.compute import SlurmCompute

        return SlurmCompute(settings)
    raise ClusterConfigError(f"cluster kind {settings.kind!r} is not available")


def load_backend(settings: ClusterSettings) -> None:
    """Import the modules of the settings' back end now, from the main thread: importing
    dask_jobqueue installs a SIGINT handler, which Python refuses in any other thread (a
    runner opens its compute from a thread of its own)."""
    if settings.kind == "slurm" and threading.current_thread() is threading.main_thread():
        import cluster.slurm.compute  # noqa: F401


__all__ = [
    "ClusterConfigError",
    "ClusterError",
    "ClusterSettings",
    "ClusterStartError",
    "Compute",
    "LocalCompute",
    "LocalSettings",
    "load_backend",
    "open_compute",
]
