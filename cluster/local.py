"""The embedded default compute: a Dask scheduler and Dask workers on this machine, each in a
process of its own started with the allow-listed environment (none of the service's secrets),
connected by mutual TLS with a CA made at each start. Only this process holds the client key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from distributed import Client

from cluster.errors import ClusterStartError
from cluster.scheduler.certificates import ComputeCertificates, Role
from cluster.scheduler.pages import (
    Publisher,
    dashboard_pages,
    start_publishers,
    stop_publishers,
)
from cluster.scheduler.process import ChildProcess, scheduler_request, workers_request
from cluster.scheduler.sandbox import sandbox_prefix
from cluster.settings import LocalSettings

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
WORKERS_TIMEOUT = 60.0


class LocalCompute:
    kind = "local"
    batch = None  # batch steps need a batch system (cluster kind `slurm`)

    def __init__(self, settings: LocalSettings, *, worker_env: Sequence[str] = ()):
        self.settings = settings
        self.certificates = ComputeCertificates.create("local")
        self.pages = dashboard_pages()
        self.publishers: list[Publisher] = []
        self.scheduler = ChildProcess(
            "Dask scheduler",
            scheduler_request(
                self.certificates,
                self._scheduler_options(),
                self.pages,
                settings.worker_saturation,
            ),
            extra_env=worker_env,
        )
        prefix = sandbox_prefix(settings.hidden_paths or []) if settings.sandbox else []
        self.workers = ChildProcess("Dask workers", {}, extra_env=worker_env, prefix=prefix)
        self._closed = False
        try:
            # both processes import Dask at once; the workers learn the address afterwards
            self.scheduler.spawn()
            self.workers.spawn()
            address = self.scheduler.start()["address"]
            self.workers.request = workers_request(
                self.certificates, address, self._worker_options()
            )
            self.workers.start()
            self.client = Client(address, security=self.certificates.security(Role.CLIENT))
            if self.settings.dashboard_address is not None:
                self.publishers = start_publishers(self.pages, self.client)
        except (OSError, RuntimeError, ClusterStartError) as exc:
            self._stop_processes()
            raise ClusterStartError(f"cannot start a local Dask cluster: {exc}") from exc

    @property
    def scheduler_pid(self) -> int | None:
        return self.scheduler.pid

    @property
    def workers_pid(self) -> int | None:
        return self.workers.pid

    def _scheduler_options(self) -> dict[str, Any]:
        address = self.settings.dashboard_address
        return {
            "host": HOST,
            "port": 0,
            "dashboard": address is not None,
            "dashboard_address": address or f"{HOST}:0",
        }

    def _worker_options(self) -> dict[str, Any]:
        s = self.settings
        if s.processes:
            return {
                "n_workers": s.n_workers,
                "nanny": True,
                "nthreads": s.threads_per_worker,
                "memory_limit": s.memory_limit,
                "host": HOST,
                "dashboard": False,
            }
        # processes: false keeps every worker thread in one process (still not this one)
        return {
            "n_workers": 1,
            "nanny": False,
            "nthreads": s.n_workers * s.threads_per_worker,
            "memory_limit": s.memory_limit,
            "host": HOST,
            "dashboard": False,
        }

    def task_resources(self, resources: dict[str, Any]) -> dict[str, float] | None:
        return None  # every local worker is alike: no placement constraints

    @property
    def dashboard_link(self) -> str | None:
        if self.settings.dashboard_address is None:
            return None
        try:
            return str(self.client.dashboard_link)
        except Exception:  # dashboard disabled (bokeh missing)
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stop_publishers(self.publishers)
        try:
            self.client.close()
        except Exception:  # the processes are stopped anyway
            logger.warning("error while closing the Dask client", exc_info=True)
        self._stop_processes()

    def _stop_processes(self) -> None:
        for child in (self.workers, self.scheduler):
            child.stop()

    def __enter__(self) -> LocalCompute:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
