"""Where the tests find the local SLURM (deploy/local-slurm/up)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SKIP_REASON = (
    'no local SLURM: run `eval "$(deploy/local-slurm/up)"` as root (the README\'s test '
    "command does), or set ORCHESTRATOR_TEST_SLURM_STATE"
)


def _parse(text: str) -> dict[str, str]:
    exports: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export ") :].split("=", 1)
            exports[key] = value.strip().strip("'\"")
    return exports


def slurm_exports(repo_root: Path) -> dict[str, str] | None:
    """The `export` lines of deploy/local-slurm/up as a dict (os.environ is left alone)."""
    state = os.environ.get("ORCHESTRATOR_TEST_SLURM_STATE")
    args = [str(repo_root / "deploy/local-slurm/up")]
    if state:
        args.append(state)
    elif os.geteuid() != 0:
        return None
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"deploy/local-slurm/up failed:\n{done.stderr[-3000:]}")
        return None
    return _parse(done.stdout)
