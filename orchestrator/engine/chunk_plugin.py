"""On the Dask scheduler: a chunk whose worker dies while it runs fails at once.

When a worker dies, Dask runs the tasks it was running again elsewhere (up to
`distributed.scheduler.allowed-failures` times). A chunk run again would run its finished
points again, and move the files their recorded outcomes name. So a chunk that has started
fails at the first death of its worker (KilledWorker), and the engine queues again only the
points it has not heard of (engine/chunks.py).

Dask counts every task assigned to a worker as "processing" on it, started or not (with
`worker-saturation: inf`, a worker holds many). A chunk waiting its turn on a worker that
dies has run nothing: it must simply go to another worker. So the chunk says when it
starts (CHUNK_STARTED_TOPIC, sent by engine/execute_chunk.py right after its start mark),
and only then does this plugin make one more loss one more than allowed. A death before
that message reached the scheduler runs the chunk again; it then finds its start mark and
runs nothing. A worker that retires is not a death: the chunk Dask starts again then finds
its start mark and runs nothing (engine/execute_chunk.py). Registered by the engine's
client (`client.register_plugin`).
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

CHUNK_KEY_SUFFIX = "-chunk"
CHUNK_STARTED_TOPIC = "orchestrator-chunk-started"
PLUGIN_NAME = "orchestrator-chunks-run-once"


class ChunksRunOnce(SchedulerPlugin):
    name = PLUGIN_NAME
    idempotent = True  # registered once per scheduler, whichever engine comes first
    scheduler: Any = None  # set by `start`, before the plugin hears of any event

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def log_event(self, topic: str, msg: Any) -> None:
        if topic != CHUNK_STARTED_TOPIC or not isinstance(msg, dict):
            return
        key, scheduler = msg.get("k"), self.scheduler
        if scheduler is None or not (isinstance(key, str) and key.endswith(CHUNK_KEY_SUFFIX)):
            return
        task = scheduler.tasks.get(key)
        if task is not None and task.state == "processing":  # its next loss is one too many
            task.suspicious = max(task.suspicious, scheduler.allowed_failures)
