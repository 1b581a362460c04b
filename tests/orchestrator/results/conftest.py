"""S3 as moto's server over HTTP on loopback (a real S3 endpoint), and a LocalCluster whose
workers are pointed at it."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from cluster import LocalCompute, LocalSettings
from orchestrator.results import upload
from orchestrator.service import Service
from tests.orchestrator.results.workloads import configure_worker

BUCKET = "campaign-results"
SECRET = "fake-secret-never-in-messages"
_DEFAULTS = {
    "UPLOAD_DEADLINE": upload.UPLOAD_DEADLINE,
    "MANIFEST_DEADLINE": upload.MANIFEST_DEADLINE,
    "BLOCK_SIZE": upload.BLOCK_SIZE,
}
_AWS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    """moto's S3 on a fixed loopback port; `stop`/`start` keep its state (it is in-process)."""

    port: int
    server: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url)


@pytest.fixture(scope="module")
def s3_compute() -> Iterator[LocalCompute]:
    """A LocalCluster of our own: its workers' environment is changed by these tests."""
    with LocalCompute(
        LocalSettings(n_workers=2, threads_per_worker=1, dashboard_address=None)
    ) as local:
        yield local
        local.client.run(configure_worker, {name: os.environ.get(name) for name in _AWS}, _DEFAULTS)


def aws_env(endpoint: str) -> dict[str, str | None]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "eu-north-1",
    }


_SETTINGS = {"UPLOAD_DEADLINE": "upload_deadline", "BLOCK_SIZE": "upload_block_size"}


def point_at(
    monkeypatch: pytest.MonkeyPatch,
    compute: LocalCompute,
    endpoint: str,
    service: Service | None = None,
    **constants: float,
) -> None:
    """This process and the workers use `endpoint`, with these upload limits.

    The limits are set where they are read: the workers' module defaults, and the service's
    engine settings when they have them (the engine then hands them to every task).
    """
    env = aws_env(endpoint)
    for name, value in env.items():
        assert value is not None
        monkeypatch.setenv(name, value)
    for constant, number in constants.items():
        monkeypatch.setattr(upload, constant, number)
        setting = _SETTINGS.get(constant)
        if service is not None and setting in type(service.settings.engine).model_fields:
            monkeypatch.setattr(service.settings.engine, setting, number)
    compute.client.run(configure_worker, env, {**_DEFAULTS, **constants})


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    from orchestrator.engine import execute

    execute.task_location.cache_clear()  # locations made earlier in this process for other ports
    server = S3Server(free_port())
    server.start()
    # moto keeps its state per process, across servers: start each test from nothing
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/reset", method="POST"))
    for name, value in aws_env(server.url).items():
        assert value is not None
        monkeypatch.setenv(name, value)
    server.client().create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    try:
        yield server
    finally:
        server.stop()
