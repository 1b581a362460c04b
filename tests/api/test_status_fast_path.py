"""GET …/campaigns/{id} answered by the fast path (api/status_fast_path.py) only where the
route would answer from its cache, with the route's own bytes and headers; everything else
still reaches the route (its 401 and 404 answers unchanged), and the access log and metrics
count both the same way."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

import api.status_fast_path
from api.issuer import DevIssuer
from api.status_fast_path import ROUTE
from tests.api.test_status_cache import BASE, SPEC
from tests.fixtures.api import bearer


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The status codes the fast path sent (the route's answers are not in it)."""
    sent: list[int] = []
    original = api.status_fast_path._send

    async def spy(send: Any, entry: Any, if_none_match: str | None) -> int:
        async def recorded(message: Any) -> None:
            if message["type"] == "http.response.start":
                sent.append(message["status"])
            await send(message)

        return await original(recorded, entry, if_none_match)

    monkeypatch.setattr(api.status_fast_path, "_send", spy)
    return sent


def _metric(http: TestClient, status: int) -> float:
    for line in http.get("/metrics").text.splitlines():
        if (
            line.startswith("orchestrator_http_requests_total{")
            and f'route="{ROUTE}"' in line
            and f'status="{status}"' in line
            and 'method="GET"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_cached_answers_come_from_the_fast_path_with_the_routes_bytes(
    http: TestClient, issuer: DevIssuer, fast: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.access")
    auth = bearer(issuer.token(project="lab/p1", role="member"))
    made = http.post(BASE, json=SPEC, headers=auth)
    assert made.status_code == 201, made.text
    url = f"{BASE}/{made.json()['id']}"
    counted = _metric(http, 200)
    first = http.get(url, headers=auth)  # the route: reads the store, fills the cache
    assert first.status_code == 200 and fast == []
    second = http.get(url, headers=auth)  # the fast path: same token, fresh entry
    assert fast == [200]
    assert second.content == first.content
    for name in ("etag", "cache-control", "content-type", "content-length"):
        assert second.headers[name] == first.headers[name], name
    unchanged = http.get(url, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b"" and fast == [200, 304]
    assert unchanged.headers["etag"] == first.headers["etag"]
    assert _metric(http, 200) == counted + 2  # counted under the route's name both times
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "orchestrator.access"]
    answered = [line for line in logged if line["path"] == url]
    assert [line["status"] for line in answered] == [200, 200, 304]  # the route's, then ours
    assert {line["user"] for line in answered} == {answered[0]["user"]} != {None}

    # not for the fast path: each reaches the route, which answers as it always did
    other = bearer(issuer.token(project="lab/p2", role="admin"))
    cases = [
        (f"/v1/projects/lab/p2/campaigns/{made.json()['id']}", other, 404),  # not p2's
        (url, other, 404),  # not a member of p1
        (url, {}, 401),  # no token
        (url, bearer("not-a-token"), 401),
        (f"{url}?x=1", auth, 200),  # a query string
        (f"{BASE}/nonexistent", auth, 404),
        (f"{BASE}/bad%20id", auth, 422),
    ]
    for path, headers, code in cases:
        answer = http.get(path, headers=headers)
        assert answer.status_code == code, (path, answer.text)
    assert fast == [200, 304]
