"""Keeps a runner's lease on its campaign, on a thread of its own.

The lease is renewed every third of its length whatever the engine's loop is doing (a
120 s SSH call or a long store write cannot outlive a 30 s lease). When a renewal is
refused (another runner took the campaign, or the lease ran out) or no renewal got through
for a whole lease, the lease is `lost`: the engine stops running the campaign, and the
store refuses its writes anyway (they are fenced on the lease).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from orchestrator.errors import LeaseLost
from orchestrator.store import Store

logger = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        store: Store,
        campaign_id: str,
        runner: str,
        lease_seconds: float,
        on_lost: Callable[[], None] | None = None,
    ):
        self._store = store
        self._campaign_id = campaign_id
        self._runner = runner
        self._seconds = lease_seconds
        self._on_lost = on_lost
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{campaign_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def check(self) -> None:
        """Raise `LeaseLost` once the lease is lost."""
        if self.lost.is_set():
            raise LeaseLost(self._campaign_id, self._runner)

    def _loop(self) -> None:
        renewed = time.monotonic()  # the claim just took the lease
        while not self._stop.wait(self._seconds / 3):
            try:
                held = self._store.heartbeat(self._campaign_id, self._runner, self._seconds)
            except Exception as exc:  # a dropped connection, a locked database: try again
                logger.warning("campaign %s: lease renewal failed: %s", self._campaign_id, exc)
                held = time.monotonic() - renewed < self._seconds
            else:
                if held:
                    renewed = time.monotonic()
            if not held:
                logger.error("campaign %s: this runner lost its lease", self._campaign_id)
                self.lost.set()
                if self._on_lost is not None:
                    self._on_lost()
                return
