"""Pages on the scheduler's dashboard, which now runs in the scheduler's own process.

A page is a module imported in the scheduler process: its `register(**options)` runs before
the scheduler is made (Dask builds the dashboard's pages then) and its `attach(scheduler)`
after (e.g. to add a handler through which the service pushes the page's data; the scheduler's
guard lets only the service's client call it). Its data comes from a publisher that the
compute starts in the service once its client is connected, and stops when it closes: the
scheduler process reads no store and holds no secret.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from distributed import Client

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class DashboardPage:
    module: str
    options: dict[str, Any] = field(default_factory=dict)
    publisher: Callable[[Client], Publisher] | None = None


_lock = threading.Lock()
_pages: dict[str, DashboardPage] = {}


def add_dashboard_page(name: str, page: DashboardPage) -> None:
    """Schedulers started from now on serve `page` (and their computes run its publisher)."""
    with _lock:
        _pages[name] = page


def remove_dashboard_page(name: str) -> None:
    with _lock:
        _pages.pop(name, None)


def dashboard_pages() -> list[DashboardPage]:
    with _lock:
        return list(_pages.values())


def page_requests(pages: list[DashboardPage]) -> list[dict[str, Any]]:
    """What the scheduler process is told about the pages (JSON)."""
    return [{"module": page.module, "options": page.options} for page in pages]


def start_publishers(pages: list[DashboardPage], client: Client) -> list[Publisher]:
    started = []
    for page in pages:
        if page.publisher is None:
            continue
        try:
            started.append(page.publisher(client))
        except Exception:  # a page without data is no reason to stop the compute
            logger.warning("the dashboard page %s gets no data", page.module, exc_info=True)
    return started


def stop_publishers(publishers: list[Publisher]) -> None:
    for publisher in publishers:
        try:
            publisher.close()
        except Exception:
            logger.warning("error while stopping a dashboard publisher", exc_info=True)
