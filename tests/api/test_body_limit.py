"""Bodies over `api.max_body_bytes` are 413 problem+json, also when sent chunked (no
Content-Length: the limit is met while the body is read), and a chunked body under the limit
goes through. Through uvicorn on a loopback port (real chunked transfer encoding) and through
the in-process test client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from api.issuer import DevIssuer
from api.main import create_app
from orchestrator.settings import Settings
from tests.fixtures.api import bearer, served

pytestmark = pytest.mark.timeout(60)
BASE = "/v1/projects/lab/p1/campaigns"


def chunks(document: dict[str, object], size: int = 64 * 1024) -> Iterator[bytes]:
    """The JSON of `document` in pieces, as a generator: httpx sends it chunked."""
    data = json.dumps(document).encode()
    for start in range(0, len(data), size):
        yield data[start : start + size]


def too_large(settings: Settings) -> dict[str, object]:
    return {"name": "big", "steps": {"a": {"command": "x" * 2 * settings.api.max_body_bytes}}}


SMALL = {"name": "small", "parameters": {"x": [1]}, "steps": {"a": {"command": "true"}}}


def assert_413(answer: httpx.Response, settings: Settings) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 413
    assert str(settings.api.max_body_bytes) in problem["detail"]


def test_a_chunked_body_over_the_limit_is_413_over_http(
    app_settings: Settings, issuer: DevIssuer
) -> None:
    auth = {**bearer(issuer.token(project="lab/p1")), "Content-Type": "application/json"}
    app = create_app(app_settings, run_campaigns=False)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        request = http.build_request(
            "POST", BASE, content=chunks(too_large(app_settings)), headers=auth
        )
        assert request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in request.headers
        assert_413(http.send(request), app_settings)

        fits = http.post(BASE, content=chunks(SMALL), headers=auth)
        assert fits.status_code == 201, fits.text


def test_a_chunked_body_over_the_limit_is_413_in_process(
    http: TestClient, app_settings: Settings, issuer: DevIssuer
) -> None:
    auth = {**bearer(issuer.token(project="lab/p1")), "Content-Type": "application/json"}
    answer = http.post(BASE, content=chunks(too_large(app_settings)), headers=auth)
    assert_413(answer, app_settings)
