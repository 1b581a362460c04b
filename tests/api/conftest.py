"""An app on the embedded default (its own data folder), and tokens for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.issuer import DevIssuer
from api.main import create_app
from cluster import LocalSettings
from orchestrator.settings import ClusterSettings, Settings
from tests.conftest import fast_engine


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        results_url=str(tmp_path / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=LocalSettings(n_workers=1, dashboard_address=None)),
    )


@pytest.fixture
def issuer(app_settings: Settings) -> DevIssuer:
    return DevIssuer(app_settings.data_dir)


@pytest.fixture
def http(app_settings: Settings) -> Iterator[TestClient]:
    """The app without its background runner: routes only."""
    with TestClient(create_app(app_settings, run_campaigns=False)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
