"""A moto server over HTTP (real AWS APIs on 127.0.0.1), reset for every test, and
provisioner settings pointing at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.provisioner import (
    Provisioner,
    ProvisionerSettings,
    SubnetPool,
    create_tables,
    open_provisioner,
)
from tests.api.conftest import app_settings, http, issuer  # noqa: F401 (the API's fixtures)
from tests.provisioner.fakes import FakePcluster

REGION = "eu-north-1"
SUBNETS = ["subnet-00000000000000001", "subnet-00000000000000002"]
BOOTSTRAP_BUCKET = "bootstrap-bucket"


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
        bootstrap_s3_url=f"s3://{BOOTSTRAP_BUCKET}/orchestrator/on-node-start",
    )


@pytest.fixture
def fake() -> FakePcluster:
    return FakePcluster()


@pytest.fixture
def provisioner(aws: str, pc_settings: ProvisionerSettings, fake: FakePcluster) -> Provisioner:
    """The parallelcluster provisioner on moto (tables, a pool of two subnets, the bucket of
    start-up scripts), with ParallelCluster faked at our seam."""
    import boto3

    create_tables(pc_settings)
    pool = SubnetPool(boto3.client("dynamodb", region_name=REGION), pc_settings.subnet_table)
    pool.add(*SUBNETS)
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BOOTSTRAP_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return open_provisioner(pc_settings, adapter=fake)
