"""Callables for the results tests, and the worker set-up they need (importable by workers)."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

MiB = 1 << 20


def content(x: int, size: int) -> bytes:
    """Deterministic bytes for point `x`, so a test can recompute what a task wrote."""
    seed = hashlib.sha256(f"point-{x}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def write_data(x: int, ctx: Any, size: int = 1000, big: int = 0, seconds: float = 0.0) -> dict:
    """Writes `data.bin` (`big` bytes for point 0 when given) and a line of log."""
    time.sleep(seconds)
    n = big if big and x == 0 else size
    (ctx.output_dir / "data.bin").write_bytes(content(x, n))
    (ctx.output_dir / "sub").mkdir(exist_ok=True)
    (ctx.output_dir / "sub" / "note.txt").write_text(f"point {x}\n")
    ctx.log(f"wrote {n} bytes")
    return {"x": x, "size": n}


def configure_worker(env: dict[str, str | None], constants: dict[str, float]) -> None:
    """Point this worker process at an S3 endpoint, with test-sized upload limits."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    from orchestrator.engine import execute
    from orchestrator.results import upload

    for constant, number in constants.items():
        setattr(upload, constant, number)
    execute.task_location.cache_clear()  # ResultsLocations built for an earlier endpoint


def fail_after_writing(x: int, ctx: Any) -> None:
    (ctx.output_dir / "partial.bin").write_bytes(b"half")
    ctx.log("about to fail")
    raise RuntimeError(f"point {x} failed")


def big_value(x: int) -> list[int]:
    return list(range(20_000 + x))  # > the store's 64 KiB: kept as result.json
