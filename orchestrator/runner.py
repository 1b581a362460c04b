"""Runs stored campaigns in the background: what `serve` uses to execute submissions.

One thread per running campaign; each project's campaigns run on that project's own compute,
started on first use. Campaigns are picked up from the store, so a submission from any
process (API, CLI `submit`) and a campaign left by a dead runner are both taken up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cluster import ClusterError, Compute, load_backend, open_compute
from orchestrator.engine import Engine
from orchestrator.errors import CampaignBusy, LeaseLost, OrchestratorError
from orchestrator.kg.outbox import Registrar
from orchestrator.kg.process import RegistrarProcess
from orchestrator.service import Service
from orchestrator.spec import add_import_paths
from orchestrator.store import runner_alive

logger = logging.getLogger(__name__)

ComputeFactory = Callable[[str], Compute]


class Runner:
    def __init__(
        self,
        service: Service,
        compute_factory: ComputeFactory | None = None,
        *,
        projects: set[str] | None = None,
        poll_interval: float = 1.0,
    ):
        self.service = service
        self._factory = compute_factory or (lambda _project: open_compute(service.settings.cluster))
        self.projects = projects  # None: every project in the store
        self.poll_interval = poll_interval
        self.computes: dict[str, Compute] = {}
        self._engines: dict[str, Engine] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.registrar: Registrar | RegistrarProcess | None = None
        self._retry_at: dict[str, tuple[int, float]] = {}  # crashed campaign → (crashes, when)

    def start(self) -> None:
        load_backend(self.service.settings.cluster)  # here, in the caller's (main) thread
        self._thread = threading.Thread(target=self._poll, name="orchestrator-runner", daemon=True)
        self._thread.start()
        self.registrar = self.service.start_registrar()

    def wake(self) -> None:
        """Look for new campaigns now (after a submit or restart)."""
        self._wake.set()

    def compute(self, project: str, start: bool = True) -> Compute | None:
        with self._lock:
            if project not in self.computes and start and not self._closing.is_set():
                self.computes[project] = self._factory(project)
            return self.computes.get(project)

    def running(self) -> list[str]:
        with self._lock:
            return [cid for cid, t in self._threads.items() if t.is_alive()]

    def close(self, timeout: float = 30.0) -> None:
        """Stop engines (their campaigns stay resumable) and close every project's compute,
        within `timeout` seconds in all for the engines."""
        ends = time.monotonic() + timeout
        self._closing.set()
        self._wake.set()
        with self._lock:
            engines = list(self._engines.values())
        for engine in engines:
            engine.stop()
        if self._thread is not None:
            self._thread.join(max(0.0, ends - time.monotonic()))
        with self._lock:
            engines, threads = list(self._engines.values()), list(self._threads.values())
        for engine in engines:
            engine.stop()  # launched meanwhile
        for thread in threads:
            thread.join(max(0.0, ends - time.monotonic()))
        with self._lock:
            computes, self.computes = list(self.computes.values()), {}
        for compute in computes:
            compute.close()
        if self.registrar is not None:
            self.registrar.close(drain=2.0)

    def _poll(self) -> None:
        while not self._closing.is_set():
            try:
                self._pick_up()
            except Exception:
                logger.exception("runner: looking for campaigns failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _pick_up(self) -> None:
        now = time.time()
        for record in self.service.unfinished_campaigns():
            if self.projects is not None and record.project not in self.projects:
                continue
            with self._lock:
                thread = self._threads.get(record.id)
                if thread is not None and thread.is_alive():
                    continue
            if runner_alive(record.runner, record.lease_until, now):
                continue
            if self._retry_at.get(record.id, (0, 0.0))[1] > now:
                continue
            self._launch(record.id, record.project, record.import_paths or [])

    def _launch(self, campaign_id: str, project: str, import_paths: list[str]) -> None:
        add_import_paths(import_paths)
        try:
            compute = self.compute(project)
        except ClusterError as exc:
            # the head node unreachable, a key refused...: say so on the campaign; the service
            # goes on, and the next campaign tries the cluster again
            logger.error("campaign %s: cannot start the project's compute: %s", campaign_id, exc)
            self.service.fail(campaign_id, f"cannot start the project's compute: {exc}")
            return
        if compute is None:
            return
        engine = self.service.engine(campaign_id, compute)
        thread = threading.Thread(
            target=self._run, args=(engine,), name=f"campaign-{campaign_id}", daemon=True
        )
        with self._lock:
            self._engines[campaign_id] = engine
            self._threads[campaign_id] = thread
        thread.start()

    def _run(self, engine: Engine) -> None:
        try:
            state = engine.run()
            logger.info("campaign %s: %s", engine.campaign_id, state)
        except LeaseLost as exc:
            logger.warning("campaign %s stopped: %s", engine.campaign_id, exc)
        except CampaignBusy:
            pass  # another runner took it first
        except OrchestratorError as exc:
            logger.error("campaign %s stopped: %s", engine.campaign_id, exc)
        except (MemoryError, RecursionError) as exc:  # retrying cannot fix these: say why
            logger.error("campaign %s failed: %s: %s", engine.campaign_id, type(exc).__name__, exc)
            self.service.fail(engine.campaign_id, f"{type(exc).__name__}: {exc}")
        except Exception:
            logger.exception("campaign %s crashed; it stays resumable", engine.campaign_id)
            crashes = self._retry_at.get(engine.campaign_id, (0, 0.0))[0] + 1
            self._retry_at[engine.campaign_id] = (crashes, time.time() + min(2**crashes, 300))
        finally:
            with self._lock:
                self._engines.pop(engine.campaign_id, None)
