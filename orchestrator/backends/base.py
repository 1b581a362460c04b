"""The interface every backend offers, and the choice between them (made once, here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestrator.settings import Settings

SERVER_URL = "ORCHESTRATOR_URL"


class Backend(Protocol):
    """A project's campaigns, wherever they live. Statuses, tasks and events are plain JSON
    objects, the same from every backend (DESIGN.md's status object and REST documents)."""

    #: campaigns run in this process when `run` is called (the embedded default); a server
    #: runs them on its own, and `run` waits for the end
    runs_here: bool

    def submit(self, document: dict[str, Any], import_paths: list[str]) -> str: ...
    def status(self, campaign_id: str) -> dict[str, Any]: ...
    def list(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]: ...
    def tasks(
        self, campaign_id: str, step: str | None, state: str | None
    ) -> Iterator[dict[str, Any]]: ...
    def unstarted_points(
        self, campaign_id: str, started: set[int]
    ) -> Iterator[tuple[int, dict[str, Any]]]: ...
    def extend(self, campaign_id: str, **change: Any) -> dict[str, Any]: ...
    def cancel(self, campaign_id: str, step: str | None, point: int | None) -> None: ...
    def throttle(self, campaign_id: str, limit: int, step: str | None) -> dict[str, Any]: ...
    def restart(self, campaign_id: str) -> dict[str, Any]: ...
    def events(self, campaign_id: str, after: int, follow: bool) -> Iterator[dict[str, Any]]: ...
    def logs(self, campaign_id: str, task: str) -> str: ...
    def dashboard_link(self) -> str | None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Backend: ...
    def __exit__(self, *exc: object) -> None: ...


def open_backend(settings: Settings | None = None, *, background: bool = False) -> Backend:
    """The server ORCHESTRATOR_URL names (with ORCHESTRATOR_TOKEN and ORCHESTRATOR_PROJECT),
    else the embedded default with `settings` (from the environment and orchestrator.toml
    when None). `background`: the embedded default runs submitted campaigns in a thread of
    this process (a notebook); otherwise they run when the caller asks (the CLI)."""
    if os.environ.get(SERVER_URL):
        from orchestrator.backends.http import HTTPBackend
        from orchestrator.client import Client

        return HTTPBackend(Client.from_settings())
    from orchestrator.backends.embedded import EmbeddedBackend

    return EmbeddedBackend.open(settings, background=background)
