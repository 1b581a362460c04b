"""Helpers shared by the benchmark scripts (tables, temp dirs, child processes)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ORCHESTRATOR = str(Path(PYTHON).with_name("orchestrator"))

# the LocalCluster shape every benchmark uses (the task's reference shape)
CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}


def ensure_repo_on_path() -> None:
    """`bench.workloads` and the project's packages import from the repository root."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def orchestrator_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI child: its store in `data_dir`, no config file, 2x1 cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(
        ORCHESTRATOR_DATA_DIR=str(data_dir),
        ORCHESTRATOR_CONFIG=str(data_dir / "no-such-orchestrator.toml"),
        ORCHESTRATOR_RESULTS_URL=str(data_dir / "results"),
        ORCHESTRATOR_CLUSTER=json.dumps({"local": CLUSTER}),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


def spec_yaml(name: str, points: int, results: Path, target: str = "bench.workloads:noop") -> str:
    return (
        f"name: {name}\n"
        f"parameters: {{x: {{range: [0, {points}]}}}}\n"
        f"steps: {{noop: {{run: '{target}', foreach: true}}}}\n"
        f"results: {results}\n"
    )


def run_child(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float
) -> tuple[int | None, float, str, str]:
    """Run a child in its own session; on timeout kill that session only.

    Returns (returncode or None on timeout, wall seconds, stdout, stderr).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: we can stop it and its children
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        return None, time.perf_counter() - start, out, err
    finally:
        if proc.poll() is None:
            kill_group(proc)
    return proc.returncode, time.perf_counter() - start, out, err


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Stop the process group this script started for `proc` (and nothing else)."""
    if proc.poll() is None:  # not reaped yet: the pid (and so the group id) is still ours
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # pgid == pid: started with start_new_session
    proc.wait()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def fmt_rate(n: int, seconds: float | None) -> str:
    return "-" if not seconds else f"{n / seconds:,.0f}/s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"
