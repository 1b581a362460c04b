"""The Workflow Service: campaigns of steps swept over parameter grids, run on Dask.

From Python and notebooks: `orchestrator.connect()` (see orchestrator.steering) and
`orchestrator.Campaign` (the builder). Imports are lazy so the CLI starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "connect": "orchestrator.steering",
    "Session": "orchestrator.steering",
    "Run": "orchestrator.steering",
    "Campaign": "orchestrator.builder",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
