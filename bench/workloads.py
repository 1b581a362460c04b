"""Trivial callables the benchmarks run (importable by Dask worker processes as bench.workloads)."""

from __future__ import annotations

from typing import Any


def noop(*_args: Any, **_kwargs: Any) -> None:
    """Does nothing: usable by `client.map(noop, range(n))` and as a campaign step alike."""
    return None
