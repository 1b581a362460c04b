"""`GET …/cluster` links the project's Campaigns page once the page is registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.issuer import DevIssuer
from api.main import create_app
from cluster import LocalSettings
from orchestrator.dashboard import register_campaigns_page, unregister_campaigns_page
from orchestrator.settings import ClusterSettings, Settings
from tests.conftest import fast_engine


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    local = LocalSettings(n_workers=1, dashboard_address="127.0.0.1:0")
    return Settings(
        data_dir=tmp_path / "data",
        results_url=str(tmp_path / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=local),
    )


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_campaigns=False)) as client:
        yield client
    unregister_campaigns_page()


def test_cluster_route_links_the_campaigns_page(http: TestClient, settings: Settings) -> None:
    auth = {"Authorization": f"Bearer {DevIssuer(settings.data_dir).token(project='lab/p1')}"}
    route = "/v1/projects/lab/p1/cluster"
    assert http.get(route, headers=auth).json()["started"] is False

    assert register_campaigns_page(settings.database_url)  # before the project's compute starts
    http.app.state.context.runner.compute("lab/p1")  # type: ignore[attr-defined]
    info = http.get(route, headers=auth).json()
    dashboard = info["dashboard_link"]
    assert info["started"] and dashboard.endswith("/status")
    assert info["campaigns_dashboard"] == (
        dashboard.removesuffix("status") + "campaigns?project=lab%2Fp1"
    )
    page = httpx.get(info["campaigns_dashboard"], timeout=30)
    assert page.status_code == 200 and '<a href="campaigns">' in page.text

    unregister_campaigns_page()  # a page that is not served is not linked
    assert http.get(route, headers=auth).json()["campaigns_dashboard"] is None
