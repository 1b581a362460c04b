"""The campaign engine: runs a stored campaign on a Dask client."""

from orchestrator.engine.engine import Engine, EngineConfig, Progress
from orchestrator.engine.execute import TaskCall, execute_task
from orchestrator.engine.outcome import Outcome

__all__ = ["Engine", "EngineConfig", "Outcome", "Progress", "TaskCall", "execute_task"]
