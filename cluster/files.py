"""The cluster's file systems (its Lustre, its home) as seen from the service: fsspec.

A `local` cluster is this machine, so its paths are local paths. A `slurm` cluster's paths
are read and written over SFTP on the head node (`sshfs`, on asyncssh), with the same key
and the same verified host keys as the SSH transport that submits the jobs.
"""

from __future__ import annotations

import threading
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from cluster.errors import ClusterConfigError
from cluster.settings import ClusterSettings

_lock = threading.Lock()
_opened: dict[str, Any] = {}


def cluster_filesystem(settings: ClusterSettings) -> Any:
    """An fsspec file system for absolute paths on the cluster (one per settings, reused)."""
    if settings.kind == "local":
        return LocalFileSystem()
    if settings.kind != "slurm":
        raise ClusterConfigError(f"cluster kind {settings.kind!r} has no file system")
    key = settings.ssh.model_dump_json()
    with _lock:
        found = _opened.get(key)
        if found is None:
            found = _opened[key] = _sftp(settings)
        return found


def _sftp(settings: ClusterSettings) -> Any:
    from sshfs import SSHFileSystem

    from cluster.ssh import connect_options

    ssh = settings.ssh
    if not ssh.host:
        raise ClusterConfigError("no SSH host configured (cluster.ssh.host)")
    options = connect_options(ssh)
    # skip_instance_cache: fsspec would key its cache on the key object's repr
    return SSHFileSystem(ssh.host, skip_instance_cache=True, **options)


def forget_filesystems() -> None:
    """Drop the opened file systems (tests; settings that changed)."""
    with _lock:
        _opened.clear()
