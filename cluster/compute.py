"""The engine's view of compute: a Dask client, a batch system where there is one, a
dashboard link, and a way to close."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from distributed import Client

if TYPE_CHECKING:
    from cluster.slurm.batch import SlurmBatch


class Compute(Protocol):
    client: Client

    @property
    def batch(self) -> SlurmBatch | None:
        """Runs `batch` steps as jobs of their own (SLURM); None without a batch system."""
        ...

    def task_resources(self, resources: dict[str, Any]) -> dict[str, float] | None:
        """Dask worker resources a step with these `resources` needs (None: any worker)."""
        ...

    @property
    def dashboard_link(self) -> str | None: ...

    @property
    def kind(self) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> Compute: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
