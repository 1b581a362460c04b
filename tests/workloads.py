"""Callables the tests' campaigns run (importable by worker processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np


def noop(**_: Any) -> None:
    return None


def square(x: float) -> float:
    return x * x


def scaled(x: float, factor: float = 1.0, square: float | None = None) -> float:
    return (square if square is not None else x) * factor


def total(scaled: list[float | None]) -> float:
    return float(sum(v for v in scaled if v is not None))


def array(n: int) -> np.ndarray:
    return np.arange(n, dtype=float)


def array_sum(array: np.ndarray) -> float:
    return float(array.sum())


def write_file(x: int, ctx: Any) -> str:
    path = ctx.output_dir / "value.txt"
    path.write_text(str(x))
    ctx.log(f"wrote {x}")
    return path.name


def flaky(x: int, fail_times: int, ctx: Any) -> int:
    """Fails the first `fail_times` attempts of each point (counted next to its output
    folder, which each attempt gets empty)."""
    marker = Path(ctx.output_dir).parent / f".{ctx.step}-{ctx.point}.attempts"
    count = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(count + 1))
    if count < fail_times:
        raise RuntimeError(f"flaky failure {count + 1} for x={x}")
    return x


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"x={x} is bad")
    return x


def slow(x: float, seconds: float = 0.2, ctx: Any = None) -> float:
    time.sleep(seconds)
    return x


def slow_counted(x: int, seconds: float, counter: str) -> int:
    """Sleeps, then records that point x ran (one line per execution, for at-most-once checks)."""
    time.sleep(seconds)
    with open(counter, "a") as handle:
        handle.write(f"{x} {os.getpid()}\n")
    return x


def spin(x: int) -> int:
    while True:  # pure Python: interrupted by the timeout
        x += 1


def scaled_check(x: float, check: float, factor: float = 1.0) -> float:
    return check * factor


def scaled_work(work: int) -> int:
    return work * 10


# --- Callables for the spec-validation and builder tests (the DESIGN.md example's shape) ---


def fi_simulate(amplitude: float, gnabar: float, seed: int, duration_ms: float) -> dict[str, float]:
    return {"amplitude": amplitude, "gnabar": gnabar, "seed": seed, "duration_ms": duration_ms}


def fi_features(simulate: dict[str, float], amplitude: float) -> dict[str, float]:
    return {"rate": simulate["amplitude"] * 10.0, "amplitude": amplitude}


def fi_summary(features: list[dict[str, float]]) -> int:
    return len(features)


def keyword_only(*, x: int, extra: int = 0) -> int:
    return x + extra


def positional_only(x: int, /) -> int:
    return x


class Steps:
    """A namespace whose static methods are reachable as `workloads:Steps.double`."""

    @staticmethod
    def double(x: float) -> float:
        return 2 * x


def total_of_checks(check: list[int | None]) -> int:
    return sum(v for v in check if v is not None)


def total_of_squares(sq: list[float | None]) -> float:
    return float(sum(v for v in sq if v is not None))


def slurm_job_id(x: int) -> dict[str, Any]:
    """Where a task ran: the SLURM job of its Dask worker."""
    return {"x": x, "job": os.environ.get("SLURM_JOB_ID")}


def total_x(sim: list[dict[str, Any]]) -> int:
    return sum(int(r["x"]) for r in sim)


def slow_square(x: float, seconds: float = 0.0) -> float:
    time.sleep(seconds)
    return x * x


def write_where(x: int, ctx: Any) -> str:
    """Writes `where.txt` in its output folder: x and the SLURM job of its worker."""
    (ctx.output_dir / "where.txt").write_text(f"{x} {os.environ.get('SLURM_JOB_ID', 'local')}\n")
    return str(ctx.output_dir)


def fails_first_attempt(x: int, ctx: Any) -> int:
    """Writes `attempt-N.txt` in its output folder; the first attempt then fails."""
    (Path(ctx.output_dir) / f"attempt-{ctx.attempt}.txt").write_text(str(x))
    if ctx.attempt == 1:
        raise RuntimeError(f"first attempt of x={x} fails")
    return x


def counted(
    x: int, counter: str, ctx: Any, fail: int = -1, kill: int = -1, seconds: float = 0.0
) -> int:
    """Records each execution (point, attempt, pid) in `counter`, then sleeps `seconds`; on
    its first attempt, point `fail` raises and point `kill` ends its worker process (after
    half a second, so that the points before it are reported); returns x * x."""
    time.sleep(seconds)
    with open(counter, "a") as handle:
        handle.write(f"{x} {ctx.attempt} {os.getpid()}\n")
    (Path(ctx.output_dir) / "out.txt").write_text(str(x))
    if ctx.attempt == 1 and x == fail:
        raise RuntimeError(f"point {x} fails its first attempt")
    if ctx.attempt == 1 and x == kill:
        time.sleep(0.5)
        os._exit(1)
    return x * x


def plus_one(x: int, counted: int) -> int:
    return counted + 1


def total_of_counted(counted: list[int | None]) -> int:
    return sum(v for v in counted if v is not None)


def forge_report(x: int, ctx: Any) -> int:
    """Point 0 sends a report, with a made-up token, that point 3 of its chunk returned 999."""
    if x == 0:
        import json

        from distributed import get_worker

        from orchestrator.engine.execute_chunk import FINISHED_TOPIC

        forged = {"ok": True, "stored": 999, "result_url": None, "error": None}
        forged |= {"started_at": 1.0, "finished_at": 2.0, "worker": None, "outputs": []}
        msg = {
            "c": ctx.campaign_id,
            "k": f"{ctx.step}-{ctx.campaign_id}-0-1-chunk",
            "t": "0" * 16,
            "i": 3,
            "a": 1,
            "o": json.dumps(forged),
        }
        get_worker().log_event(FINISHED_TOPIC, {"batch": [msg]})
        time.sleep(0.5)  # the forged report arrives long before point 3 runs
    return x
