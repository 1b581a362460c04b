"""The registrar in a process of its own, at low priority: registering provenance costs ~1 ms
of CPU per task, which must not slow the engine and the Dask scheduler (and, in one process,
would contend for their GIL). The service starts it and stops it (`close(drain=…)`)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.settings import Settings

logger = logging.getLogger(__name__)
NICE = 10
GATHER = 5.0  # seconds of rest after a batch that was not full: what is left waits that long


class RegistrarProcess:
    def __init__(self, settings: Settings):
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._drain = context.Value("d", 0.0)
        self._process = context.Process(
            target=_serve,
            args=(settings, self._stop, self._drain),
            name="orchestrator-registrar",
            daemon=True,
        )

    def start(self) -> RegistrarProcess:
        self._process.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def finish(self, drain: float = 0.0) -> None:
        """Ask it to send what is due for up to `drain` seconds, then stop; returns at once
        (the caller closes its compute meanwhile). `close` waits for the end."""
        if self._process.pid is None or self._stop.is_set():
            return
        self._drain.value = drain
        self._stop.set()

    def close(self, drain: float = 0.0) -> None:
        """Stop it, letting it send what is due for up to `drain` seconds first (or what
        `finish` said)."""
        if self._process.pid is None:
            return
        self.finish(drain)
        self._process.join(float(self._drain.value) + 15)
        if self._process.is_alive():  # stuck on the store or the graph: the outbox keeps it
            self._process.terminate()
            self._process.join(5)


def _serve(settings: Settings, stop: Event, drain: object) -> None:
    with contextlib.suppress(OSError):
        os.nice(NICE)
    from orchestrator.kg.factory import open_registrar
    from orchestrator.kg.outbox import BATCH
    from orchestrator.store import Store

    store = Store(settings.database_url)
    registrar = open_registrar(store, settings.kg, settings.data_dir)
    try:
        while not stop.is_set():
            try:
                busy = registrar.run_once()
            except Exception:
                logger.exception("registrar: sending registrations failed")
                busy = False
            # niced: when busy it takes only what the campaign leaves idle. A batch costs
            # ~0.15 s of CPU beyond its items (opening and flushing the graph): after one
            # that was not full it rests longer, so that batches grow with the campaign's
            # pace (5000 tasks in 100-item batches took 1.8x the CPU of 1000-item ones)
            if not busy:
                stop.wait(registrar.interval)
            elif registrar.last_batch < BATCH:
                stop.wait(GATHER)
        registrar.close(drain=float(drain.value))  # type: ignore[attr-defined]
    finally:
        store.close()
