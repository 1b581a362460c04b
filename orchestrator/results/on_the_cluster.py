"""Which cluster a `cluster:///…` results path lives on, seen from the service.

The service names its cluster once (`use`, from its settings); until then the cluster
settings are read from the environment (`ORCHESTRATOR_CLUSTER__…`), as the CLI does.
"""

from __future__ import annotations

import threading
from typing import Any

from cluster.files import cluster_filesystem
from cluster.settings import ClusterSettings
from orchestrator.errors import ResultsError

_lock = threading.Lock()
_settings: ClusterSettings | None = None


def use(settings: ClusterSettings) -> None:
    """Cluster paths are on this cluster (the service's own, from its settings)."""
    global _settings
    with _lock:
        _settings = settings


def settings() -> ClusterSettings:
    global _settings
    with _lock:
        if _settings is None:
            from orchestrator.settings import Settings

            _settings = Settings().cluster
        return _settings


def filesystem() -> Any:
    """The cluster's files over SFTP (SLURM), or this machine's (a local cluster)."""
    chosen = settings()
    try:
        return cluster_filesystem(chosen)
    except Exception as exc:  # ClusterError, OSError, asyncssh's errors as sshfs connects
        raise ResultsError(f"cannot reach the cluster's files ({describe()}): {exc}") from exc


def describe() -> str:
    """Where cluster paths are read from, for messages (no secrets)."""
    chosen = settings()
    if chosen.kind == "local":
        return "the local cluster (this machine)"
    ssh = chosen.ssh
    user = f"{ssh.username}@" if ssh.username else ""
    return f"the cluster's head node {user}{ssh.host}:{ssh.port} (SFTP)"
