"""What a task may know about itself: given to callables that take a `ctx` keyword."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TaskContext:
    campaign_id: str
    step: str
    point: int | None
    parameters: dict[str, Any]
    attempt: int
    output_dir: Path
    """A folder for files the task writes; it ends up in the campaign's results location.

    Local results: the task's folder itself. Object stores (S3): a staging folder on the
    worker, uploaded (and verified) when the task returns, then removed; the task counts as
    succeeded only once every file in it is stored. Write whole files here, nothing else."""
    output_url: str
    """Where `output_dir`'s files are kept (the same folder when results are local)."""
    _log: Path | None = field(default=None, repr=False)

    def log(self, message: str) -> None:
        """Append a line to the task's log (`orchestrator logs CAMPAIGN TASK` shows it)."""
        path = self.output_dir / "task.log"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
