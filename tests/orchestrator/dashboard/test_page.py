"""The Campaigns page on a real Dask dashboard (a LocalCluster started after registering it),
after a real campaign, rendered by a real headless Chromium; the screenshot is kept as
`artifacts/dashboard-campaigns.png`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster import LocalCompute, LocalSettings
from orchestrator.dashboard import (
    campaigns_page_registered,
    campaigns_url,
    register_campaigns_page,
    unregister_campaigns_page,
)
from orchestrator.service import Service
from tests.conftest import IN_CI, REPO
from tests.helpers import run, spec_doc
from tests.orchestrator.dashboard import chromium

SCREENSHOT = REPO / "artifacts" / "dashboard-campaigns.png"

# point 3 fails: its `scaled` task is held (pending), and so is the fan-in `total`
CAMPAIGN = spec_doc(
    "dashboard-scan",
    {
        "square": {"run": "tests.workloads:fail_on", "foreach": True, "with": {"bad": 3}},
        "scaled": {"run": "tests.workloads:scaled", "foreach": True, "needs": ["square"]},
        "total": {"run": "tests.workloads:total", "needs": ["scaled"]},
    },
    x=list(range(8)),
)


@pytest.fixture
def dashboard_compute(service: Service) -> Iterator[LocalCompute]:
    """The page registered on the service's store, then a LocalCluster with its dashboard."""
    assert register_campaigns_page(service.settings.database_url, interval=0.5)
    try:
        with LocalCompute(
            LocalSettings(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0")
        ) as local:
            yield local
    finally:
        unregister_campaigns_page()
    assert not campaigns_page_registered()


@pytest.mark.chromium
def test_campaigns_page_shows_progress_by_step_in_chromium(
    service: Service, dashboard_compute: LocalCompute, tmp_path: Path
) -> None:
    if not chromium.available():
        if IN_CI:
            pytest.fail("CI=true but chromium is missing: the test command installs `chromium`")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium) to render the page")
    campaign_id, state = run(service, dashboard_compute, CAMPAIGN)
    assert state == "failed"

    link = dashboard_compute.dashboard_link
    assert link and link.endswith("/status")
    url = campaigns_url(link)
    assert url == link.removesuffix("status") + "campaigns"
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and '<a href="campaigns">' in page.text  # in the nav bar

    expected = [
        "dashboard-scan",
        campaign_id,
        "15/17 done",  # 8 + 7 of 8 + 0 of 1
        "square 8/8 (100%)",
        "scaled 7/8 (88%)",
        "total 0/1 (0%)",
        "square/3 (attempt",
        "ValueError: x=3 is bad",
    ]
    text = chromium.render(
        url,
        lambda text: all(e in text for e in expected),
        profile=tmp_path / "chromium",
        screenshot=SCREENSHOT,
    )
    missing = [e for e in expected if e not in text]
    assert not missing, f"not on the rendered page: {missing}\n{text[-2000:]}"
    assert SCREENSHOT.stat().st_size > 10_000

    # registered for every project, the page takes `?project=` from its link (as the REST
    # API's `cluster` route gives it) and shows only that project's campaigns
    other = chromium.render(
        str(campaigns_url(link, "lab/elsewhere")),
        lambda text: "No campaigns yet" in text,
        profile=tmp_path / "chromium",
    )
    assert "project lab/elsewhere" in other and "No campaigns yet" in other
    assert "dashboard-scan" not in other
