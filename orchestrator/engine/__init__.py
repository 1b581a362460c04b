"""The campaign engine: runs a stored campaign on a Dask client.

Names are imported on first use, so a worker that unpickles `execute_task` does not import
the engine, the store and their dependencies.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.engine.config import EngineConfig
    from orchestrator.engine.engine import Engine
    from orchestrator.engine.execute import TaskCall, execute_task
    from orchestrator.engine.manifest import Progress
    from orchestrator.engine.outcome import Outcome

_WHERE = {
    "Engine": "orchestrator.engine.engine",
    "EngineConfig": "orchestrator.engine.config",
    "Progress": "orchestrator.engine.manifest",
    "TaskCall": "orchestrator.engine.execute",
    "execute_task": "orchestrator.engine.execute",
    "Outcome": "orchestrator.engine.outcome",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(name)


__all__ = ["Engine", "EngineConfig", "Outcome", "Progress", "TaskCall", "execute_task"]
