"""On the Dask scheduler: a chunk whose worker dies fails at once.

When a worker dies, Dask runs the tasks it was running again elsewhere (up to
`distributed.scheduler.allowed-failures` times). A chunk run again would run its finished
points again, and move the files their recorded outcomes name. So a chunk fails at the first
death of its worker (KilledWorker), and the engine queues again only the points it has not
heard of (engine/chunks.py). A worker that retires is not a death: the chunk Dask starts
again then finds its start mark and runs nothing (engine/execute_chunk.py). Registered by
the engine's client (`client.register_plugin`).
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

CHUNK_KEY_SUFFIX = "-chunk"
PLUGIN_NAME = "orchestrator-chunks-run-once"


class ChunksRunOnce(SchedulerPlugin):
    name = PLUGIN_NAME
    idempotent = True  # registered once per scheduler, whichever engine comes first

    def update_graph(self, scheduler: Any, *, tasks: Any = (), **kwargs: Any) -> None:
        for key in tasks:
            if isinstance(key, str) and key.endswith(CHUNK_KEY_SUFFIX):
                task = scheduler.tasks.get(key)
                if task is not None:  # one more loss is one more than allowed
                    task.suspicious = max(task.suspicious, scheduler.allowed_failures)
