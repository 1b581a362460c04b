"""`chunk` in the REST document: a chunked campaign runs over HTTP, a bad value is a 422 that
names `steps.<step>.chunk`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.issuer import DevIssuer
from api.main import create_app
from api.schemas import SPEC_EXAMPLE
from orchestrator.settings import Settings
from orchestrator.spec import parse_document
from tests.fixtures.api import bearer

BASE = "/v1/projects/lab/p1/campaigns"


def spec(chunk: object) -> dict[str, object]:
    return {
        "name": "chunked",
        "parameters": {"x": {"range": [0, 12]}},
        "steps": {
            "sq": {"run": "tests.workloads:square", "foreach": True, "chunk": chunk},
            "total": {"run": "tests.workloads:total_of_squares", "needs": ["sq"]},
        },
    }


@pytest.fixture
def live(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as client:
        yield client


def test_a_chunked_campaign_over_http(live: TestClient, issuer: DevIssuer) -> None:
    auth = bearer(issuer.token(project="lab/p1"))
    made = live.post(BASE, json=spec(5), headers=auth)
    assert made.status_code == 201, made.text
    url = f"{BASE}/{made.json()['id']}"
    deadline = time.time() + 90
    while (status := live.get(url, headers=auth).json())["state"] not in {"succeeded", "failed"}:
        assert time.time() < deadline, status
        time.sleep(0.2)
    assert status["state"] == "succeeded"
    assert status["steps"]["sq"]["succeeded"] == 12
    tasks = live.get(f"{url}/tasks", params={"step": "sq"}, headers=auth).json()["items"]
    assert sorted(t["point"] for t in tasks) == list(range(12))


@pytest.mark.parametrize("bad", [0, -1, "big", 1.5])
def test_a_bad_chunk_is_422_naming_the_field(
    http: TestClient, issuer: DevIssuer, bad: object
) -> None:
    auth = bearer(issuer.token(project="lab/p1"))
    answer = http.post(BASE, json=spec(bad), headers=auth)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"steps.sq.chunk"}


def test_the_openapi_example_is_a_valid_chunked_spec() -> None:
    assert parse_document(SPEC_EXAMPLE).steps["features"].chunk == "auto"
