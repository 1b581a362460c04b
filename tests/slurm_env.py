"""Settings for tests against the local single-node SLURM of deploy/local-slurm."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SKIP_REASON = (
    'no local SLURM: run `eval "$(deploy/local-slurm/up)"` as root (it sets '
    "ORCHESTRATOR_TEST_SLURM_STATE), or run the tests as root so they start it themselves"
)
STATE_VAR = "ORCHESTRATOR_TEST_SLURM_STATE"
_KEYS = "KIND SLURM__PARTITION SLURM__WORK_DIR SSH__HOST SSH__PORT SSH__USERNAME SSH__KEY_FILE"
EXPORTS: tuple[str, ...] = ("SLURM_CONF", STATE_VAR, "ORCHESTRATOR_CLUSTER__SSH__KNOWN_HOSTS")
EXPORTS += tuple(f"ORCHESTRATOR_CLUSTER__{k}" for k in _KEYS.split())
DAEMONS = ("munged", "mariadb", "slurmdbd", "slurmctld", "slurmd", "sshd")


def _alive(state_dir: Path) -> bool:
    """True if every daemon in state_dir/run/<name>.pid is a live process (not a zombie)."""
    for name in DAEMONS:
        try:
            pid = int((state_dir / "run" / f"{name}.pid").read_text().split()[0])
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError, IndexError):
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def slurm_exports(repo_root: Path) -> dict[str, str] | None:
    """The `export K=V` settings of deploy/local-slurm/up, without touching os.environ.

    Taken from the environment if ORCHESTRATOR_TEST_SLURM_STATE names a live setup; otherwise,
    as root, from running `up` (for that STATE_DIR if set, else its default). None when not
    root and nothing runs, or when `up` fails (its log goes to stderr; with CI=true it raises).
    """
    state = os.environ.get(STATE_VAR)
    if state and _alive(Path(state)) and all(k in os.environ for k in EXPORTS):
        return {k: os.environ[k] for k in EXPORTS}
    if os.geteuid() != 0:
        return None
    cmd = [str(repo_root / "deploy" / "local-slurm" / "up"), *([state] if state else [])]
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        message = f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        if os.environ.get("CI") == "true":
            raise RuntimeError(message)
        print(message, file=sys.stderr)
        return None
    exports: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            exports[key.strip()] = value.strip()
    return exports
