"""The embedded default compute: a Dask LocalCluster in this process."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from distributed import Client, LocalCluster

from cluster.errors import ClusterStartError
from cluster.settings import LocalSettings

logger = logging.getLogger(__name__)


class LocalCompute:
    kind = "local"
    batch = None  # batch steps need a batch system (cluster kind `slurm`)

    def __init__(self, settings: LocalSettings):
        try:
            self.cluster = LocalCluster(
                n_workers=settings.n_workers,
                threads_per_worker=settings.threads_per_worker,
                processes=settings.processes,
                memory_limit=settings.memory_limit,
                dashboard_address=settings.dashboard_address or ":0",
                scheduler_kwargs={"dashboard": settings.dashboard_address is not None},
                host="127.0.0.1",
            )
            self.client = Client(self.cluster)
        except (OSError, RuntimeError) as exc:
            raise ClusterStartError(f"cannot start a local Dask cluster: {exc}") from exc
        self._closed = False

    def task_resources(self, resources: dict[str, Any]) -> dict[str, float] | None:
        return None  # every local worker is alike: no placement constraints

    @property
    def dashboard_link(self) -> str | None:
        try:
            return str(self.client.dashboard_link)
        except Exception:  # dashboard disabled (bokeh missing or address None)
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.client.close()
        self.cluster.close()

    def __enter__(self) -> LocalCompute:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
