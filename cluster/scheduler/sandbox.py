"""Local workers in namespaces of their own, where the service's private folders are empty.

On one machine the workers run as the service's OS user: without this, task code could read
the service's data folder (its SQLite file, the development issuer's key) or another process's
environment. Where Linux allows unprivileged user namespaces, the workers start under
`unshare`: a new mount namespace where each hidden folder is replaced by an empty tmpfs, and a
new PID namespace with its own /proc, where no process of the service is visible. Where it
does not, one warning says so and the workers run without it.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

UNSHARE = ["--user", "--map-current-user", "--mount", "--pid", "--fork", "--mount-proc"]
# mount an empty tmpfs over every existing folder named after the script, then run the command
HIDE = (
    'while [ "$1" != "--" ]; do '
    '[ -d "$1" ] && { mount -t tmpfs -o size=1m,mode=700 tmpfs "$1" || exit 97; }; shift; '
    'done; shift; exec "$@"'
)


@functools.cache
def namespaces_available() -> bool:
    """Whether the sandbox works here: the namespaces, and a tmpfs mounted in them."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    with tempfile.TemporaryDirectory(prefix="orchestrator-probe-") as folder:
        try:
            probe = subprocess.run(
                [unshare, *UNSHARE, "--", "sh", "-c", HIDE, "probe", folder, "--", "true"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return probe.returncode == 0


def sandbox_prefix(hidden: Sequence[Path]) -> list[str]:
    """The command that starts a worker process hidden from the service's `hidden` folders
    and processes (empty: namespaces are not available here, and a warning was logged)."""
    if not namespaces_available():
        _warn_once()
        return []
    unshare = shutil.which("unshare") or "unshare"
    folders = []
    for path in hidden:
        folder = Path(path).expanduser().resolve()
        # made now if missing (private): one made later would be visible to the workers
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folders.append(str(folder))
    return [unshare, *UNSHARE, "--", "sh", "-c", HIDE, "sandbox", *folders, "--"]


@functools.cache
def _warn_once() -> None:
    logger.warning(
        "unprivileged user namespaces are not available: local workers run as this user and "
        "task code can read the service's data folder (use a SLURM cluster, or allow "
        "unprivileged user namespaces, for untrusted task code)"
    )
