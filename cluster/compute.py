"""The engine's view of compute: a Dask client, a dashboard link, and a way to close."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from distributed import Client


class Compute(Protocol):
    client: Client

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
