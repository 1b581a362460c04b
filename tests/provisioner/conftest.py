"""A moto server over HTTP (real AWS APIs on 127.0.0.1), reset for every test, and
provisioner settings pointing at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.provisioner import ProvisionerSettings
from tests.api.conftest import app_settings, http, issuer  # noqa: F401 (the API's fixtures)

REGION = "eu-north-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS clients made now reach the moto server, which starts empty."""
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


@pytest.fixture
def pc_settings(tmp_path: Path) -> ProvisionerSettings:
    return ProvisionerSettings(
        kind="parallelcluster",
        region=REGION,
        service_cidr="10.20.0.0/16",
        idle_timeout=600,
        records_file=tmp_path / "clusters.json",
    )
