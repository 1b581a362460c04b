"""The registrar in a process of its own, at low priority: registering provenance costs ~1 ms
of CPU per task, which must not slow the engine and the Dask scheduler (and, in one process,
would contend for their GIL). The service starts it and stops it (`close(drain=…)`).

It is `python -m orchestrator.kg.process`, not a `multiprocessing` child: a spawned child
runs the parent's main script again first (the CLI and everything it imports, ~1.5 s of CPU
while the campaign starts). The settings reach it on its stdin (pickled, never on disk or
in its arguments); then one line, the drain in seconds, asks it to stop. The end of its
stdin (the service is gone) stops it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.settings import Settings

logger = logging.getLogger(__name__)
NICE = 10
GATHER = 5.0  # seconds of rest after a batch that was not full: what is left waits that long
_SIZE = 8  # bytes of the settings' length, before them on stdin


class RegistrarProcess:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._drain = 0.0
        self._asked = False

    def start(self) -> RegistrarProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.kg.process"], stdin=subprocess.PIPE
        )
        self._process = process
        data = pickle.dumps(self._settings)
        assert process.stdin is not None
        try:
            process.stdin.write(len(data).to_bytes(_SIZE, "big") + data)
            process.stdin.flush()
        except OSError:  # it died at once: the outbox keeps the registrations
            logger.warning("the registrar process could not be started")
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def finish(self, drain: float = 0.0) -> None:
        """Ask it to send what is due for up to `drain` seconds, then stop; returns at once
        (the caller closes its compute meanwhile). `close` waits for the end."""
        process = self._process
        if process is None or self._asked:
            return
        self._asked, self._drain = True, drain
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.write(f"{drain}\n".encode())
            process.stdin.close()

    def close(self, drain: float = 0.0) -> None:
        """Stop it, letting it send what is due for up to `drain` seconds first (or what
        `finish` said)."""
        process = self._process
        if process is None:
            return
        self.finish(drain)
        try:
            process.wait(self._drain + 15)
        except subprocess.TimeoutExpired:  # stuck on the store or the graph: the outbox keeps it
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class _Parent:
    """What the service says on stdin (read unbuffered): a drain, then the end; or the end."""

    def __init__(self, fd: int):
        self.fd = fd
        self.drain = 0.0
        self.stopped = False

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the stop; True once asked."""
        if not self.stopped:
            readable, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
            if readable:
                said = os.read(self.fd, 4096)  # one small write: the whole line, or b"" (end)
                with contextlib.suppress(ValueError):
                    self.drain = float(said or b"0")
                self.stopped = True
        return self.stopped


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data


def _serve(settings: Settings, parent: _Parent) -> None:
    from orchestrator.kg.factory import open_registrar
    from orchestrator.kg.outbox import BATCH
    from orchestrator.store import Store

    store = Store(settings.database_url)
    registrar = open_registrar(store, settings.kg, settings.data_dir)
    try:
        while not parent.wait(0):
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
                parent.wait(registrar.interval)
            elif registrar.last_batch < BATCH:
                parent.wait(GATHER)
        registrar.close(drain=parent.drain)
    finally:
        store.close()


def main() -> None:
    with contextlib.suppress(OSError):
        os.nice(NICE)
    logging.basicConfig(level=logging.WARNING)
    fd = sys.stdin.fileno()
    header = _read_exactly(fd, _SIZE)
    if len(header) < _SIZE:
        return  # the service went away before it said anything
    settings = pickle.loads(_read_exactly(fd, int.from_bytes(header, "big")))
    _serve(settings, _Parent(fd))


if __name__ == "__main__":
    # Ctrl-C reached the process group: stop now, quietly (what is not sent stays in the
    # outbox; a registration sent twice is an update)
    with contextlib.suppress(KeyboardInterrupt):
        main()
