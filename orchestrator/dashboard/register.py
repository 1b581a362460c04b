"""Puts the Campaigns page on the Dask dashboard of every scheduler this process starts.

The schedulers run in processes of their own (no secret, no store). Registering adds the page
to `cluster.scheduler.pages`: every compute started afterwards (local and SLURM alike) has its
scheduler serve the page, and runs a publisher here that reads the campaigns of `project` and
pushes them to the scheduler (`orchestrator.dashboard.pushed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from cluster.scheduler.pages import DashboardPage, add_dashboard_page, remove_dashboard_page
from orchestrator.dashboard.overview import CampaignsFeed, as_service_factory
from orchestrator.service import Service

logger = logging.getLogger(__name__)

PAGE = "campaigns"
_feeds: dict[str, CampaignsFeed] = {}  # path → the feed of the page registered there


def register_campaigns_page(
    service: Service | str | Callable[[], Service],
    project: str | None = None,
    *,
    interval: float = 1.0,
    limit: int = 10,
    path: str = f"/{PAGE}",
) -> bool:
    """Serve the Campaigns page at `path` on the dashboard of every Dask scheduler this process
    starts later. `service`: a Service, a database URL (read on first view), or a
    function that opens a Service. `project`: show only its campaigns (one process per project);
    None shows every project's, or the one named by the page's `?project=vlab/project`.
    Returns False (and logs why) when the dashboard cannot be served (Bokeh missing).
    Calling it again replaces the page."""
    try:
        import orchestrator.dashboard.page  # noqa: F401  (Bokeh: the scheduler needs it too)
    except ImportError as exc:
        logger.warning("no Campaigns page on the Dask dashboard: %s", exc)
        return False
    from orchestrator.dashboard.pushed import CampaignsPublisher

    opener, owns = as_service_factory(service)
    feed = CampaignsFeed(opener, limit=limit, fresh=interval, owns_service=owns)
    add_dashboard_page(
        path,
        DashboardPage(
            module="orchestrator.dashboard.pushed",
            options={"interval": interval, "path": path, "project": project},
            publisher=lambda client: CampaignsPublisher(feed, project, interval, client),
        ),
    )
    previous = _feeds.pop(path, None)
    _feeds[path] = feed
    if previous is not None:
        previous.close()
    return True


def unregister_campaigns_page(path: str = f"/{PAGE}") -> None:
    """Schedulers started from now on have no such page (those running keep theirs)."""
    remove_dashboard_page(path)
    feed = _feeds.pop(path, None)
    if feed is not None:
        feed.close()


def campaigns_page_registered(path: str = f"/{PAGE}") -> bool:
    return path in _feeds


def campaigns_url(dashboard_link: str | None, project: str | None = None) -> str | None:
    """The Campaigns page beside a dashboard page: `http://host:8787/status` →
    `http://host:8787/campaigns` (a proxied `…/proxy/8787/status` keeps its prefix)."""
    if not dashboard_link:
        return None
    parts = urlsplit(dashboard_link)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
    url = urljoin(base, PAGE)
    return f"{url}?{urlencode({'project': project})}" if project else url
