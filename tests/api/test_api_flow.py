"""A campaign's whole life over HTTP, with the background runner on a real LocalCluster."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.issuer import DevIssuer
from api.main import create_app
from orchestrator.settings import Settings
from tests.fixtures.api import bearer

BASE = "/v1/projects/lab/p1/campaigns"
SPEC = {
    "name": "http",
    "parameters": {"x": {"range": [0, 6]}},
    "steps": {
        "sq": {"run": "tests.workloads:square", "foreach": True},
        "total": {"run": "tests.workloads:total_of_squares", "needs": ["sq"]},
    },
}


@pytest.fixture
def live(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as client:
        yield client


def _wait_state(http: TestClient, url: str, headers: dict[str, str], states: set[str]) -> dict:
    deadline = time.time() + 90
    while time.time() < deadline:
        status = http.get(url, headers=headers).json()
        if status["state"] in states:
            return status  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"never reached {states}")


def test_submit_stream_events_and_finish(live: TestClient, issuer: DevIssuer):
    auth = bearer(issuer.token(project="lab/p1"))
    made = live.post(BASE, json=SPEC, headers=auth)
    assert made.status_code == 201, made.text
    campaign = made.json()
    assert made.headers["location"] == f"{BASE}/{campaign['id']}"
    assert campaign["points"] == 6 and campaign["project"] == "lab/p1"

    seen: list[dict] = []
    with live.stream(
        "GET", f"{BASE}/{campaign['id']}/events", headers={**auth, "Accept": "text/event-stream"}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1]["kind"] == "campaign" and seen[-1]["state"] == "succeeded"

    status = live.get(f"{BASE}/{campaign['id']}", headers=auth).json()
    assert status["state"] == "succeeded" and status["counts"]["succeeded"] == 7
    tasks = live.get(
        f"{BASE}/{campaign['id']}/tasks", headers=auth, params={"step": "total"}
    ).json()["items"]
    assert tasks[0]["result"] == sum(x * x for x in range(6))
    resumed = live.get(
        f"{BASE}/{campaign['id']}/events",
        headers={**auth, "Accept": "text/event-stream", "Last-Event-ID": str(len(seen) - 2)},
    )
    assert resumed.text.count("data: ") == 2
    page = live.get(
        f"{BASE}/{campaign['id']}/events", headers=auth, params={"after": 3, "limit": 2}
    ).json()
    assert [e["seq"] for e in page["items"]] == [4, 5] and page["next_after"] == 5
    logs = live.get(f"{BASE}/{campaign['id']}/tasks/sq:2/logs", headers=auth)
    assert logs.status_code == 200 and "succeeded" in logs.text
    cluster = live.get("/v1/projects/lab/p1/cluster", headers=auth).json()
    assert cluster["started"] and cluster["workers"] == 1


def test_invalid_spec_is_422_with_field_paths_and_nothing_stored(
    http: TestClient, issuer: DevIssuer
):
    auth = bearer(issuer.token(project="lab/p1"))
    bad = {
        **SPEC,
        "steps": {
            "sq": {
                "run": "tests.workloads:square",
                "foreach": True,
                "resources": {"memory": "lots"},
                "needs": ["nope"],
            }
        },
    }
    answer = http.post(BASE, json=bad, headers=auth)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in answer.json()["errors"]}
    assert "steps.sq.resources.memory" in fields
    assert http.get(BASE, headers=auth).json()["items"] == []
    assert (
        http.post(
            BASE, content=b"{not json", headers={**auth, "Content-Type": "application/json"}
        ).status_code
        == 422
    )


def test_idempotent_submit_and_pagination(http: TestClient, issuer: DevIssuer):
    auth = bearer(issuer.token(project="lab/p1"))
    first = http.post(BASE, json=SPEC, headers={**auth, "Idempotency-Key": "abc"})
    again = http.post(BASE, json=SPEC, headers={**auth, "Idempotency-Key": "abc"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    for _ in range(4):
        http.post(BASE, json=SPEC, headers=auth)
    ids, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get(BASE, headers=auth, params=params).json()
        ids += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(ids) == len(set(ids)) == 5
    assert http.get(BASE, headers=auth, params={"cursor": "%%%"}).status_code == 400


def test_cancel_and_restart_over_http(http: TestClient, issuer: DevIssuer):
    auth = bearer(issuer.token(project="lab/p1"))
    cid = http.post(BASE, json=SPEC, headers=auth).json()["id"]
    cancelled = http.post(f"{BASE}/{cid}/cancel", headers=auth)
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
    assert http.post(f"{BASE}/{cid}/cancel", headers=auth).status_code == 409
    restarted = http.post(f"{BASE}/{cid}/restart", headers=auth)
    assert restarted.status_code == 202 and restarted.json()["state"] == "accepted"
    bad_point = http.post(f"{BASE}/{cid}/cancel", headers=auth, json={"point": 99})
    assert bad_point.status_code == 409


def test_limits_and_problem_details(http: TestClient, issuer: DevIssuer, app_settings: Settings):
    auth = bearer(issuer.token(project="lab/p1"))
    huge = {"name": "big", "steps": {"a": {"command": "x" * (2 << 20)}}}
    too_large = http.post(BASE, json=huge, headers=auth)
    assert too_large.status_code == 413
    missing = http.get(f"{BASE}/doesnotexist", headers=auth)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    unknown = http.get("/nowhere")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", BASE, "GET, POST"),
        ("PUT", f"{BASE}/some-id", "DELETE, GET"),
        ("GET", f"{BASE}/some-id/cancel", "POST"),
    ],
)
def test_405_names_every_method_of_the_path(
    http: TestClient, issuer: DevIssuer, method: str, path: str, allow: str
) -> None:
    auth = bearer(issuer.token(project="lab/p1"))
    answer = http.request(method, path, headers=auth)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.postgres
def test_a_postgres_backed_server_runs_a_campaign(app_settings: Settings, pg_url: str):
    settings = app_settings.model_copy(update={"db_url": pg_url})
    issuer = DevIssuer(settings.data_dir)
    auth = bearer(issuer.token(project="lab/p1"))
    with TestClient(create_app(settings)) as client:
        made = client.post(BASE, json=SPEC, headers=auth)
        assert made.status_code == 201, made.text
        final = _wait_state(
            client, f"{BASE}/{made.json()['id']}", auth, {"succeeded", "failed", "cancelled"}
        )
    assert final["state"] == "succeeded" and final["counts"]["succeeded"] == 7
    from orchestrator.store import Store

    store = Store(pg_url)
    assert store.get_campaign(final["id"]).project == "lab/p1"
    store.close()


def test_extend_over_http(live: TestClient, issuer: DevIssuer):
    auth = bearer(issuer.token(project="lab/p1"))
    campaign = live.post(BASE, json=SPEC, headers=auth).json()
    url = f"{BASE}/{campaign['id']}"
    _wait_state(live, url, auth, {"succeeded"})
    bad = live.post(f"{url}/extend", json={"parameters": {"y": [1]}}, headers=auth)
    assert bad.status_code == 422, bad.text
    assert "extensions.0.parameters" in bad.text
    made = live.post(f"{url}/extend", json={"points": [{"x": 10}]}, headers=auth)
    assert made.status_code == 202, made.text
    assert made.json()["points"] == 7
    status = _wait_state(live, url, auth, {"succeeded", "failed"})
    assert status["state"] == "succeeded" and status["steps"]["sq"]["succeeded"] == 7
    tasks = live.get(f"{url}/tasks", params={"step": "total"}, headers=auth).json()
    assert tasks["items"][0]["result"] == sum(x * x for x in range(6)) + 100
    other = bearer(issuer.token(project="lab/p2"))
    assert live.post(f"{url}/extend", json={"points": [{"x": 1}]}, headers=other).status_code == 404


def test_extend_and_cancel_points_of_a_running_campaign_over_http(
    live: TestClient, issuer: DevIssuer
):
    auth = bearer(issuer.token(project="lab/p1"))
    spec = {
        "name": "running",
        "parameters": {"x": {"range": [0, 8]}},
        "steps": {
            "sq": {"run": "tests.workloads:slow_square", "foreach": True, "with": {"seconds": 0.3}}
        },
    }
    url = f"{BASE}/{live.post(BASE, json=spec, headers=auth).json()['id']}"
    _wait_state(live, url, auth, {"running"})
    made = live.post(f"{url}/extend", json={"parameters": {"x": [100, 101]}}, headers=auth)
    assert made.status_code == 202 and made.json()["points"] == 10
    assert live.post(f"{url}/cancel", json={"point": 9}, headers=auth).status_code == 202
    status = _wait_state(live, url, auth, {"succeeded", "failed", "cancelled"})
    assert status["steps"]["sq"]["succeeded"] == 9 and status["steps"]["sq"]["cancelled"] == 1
    tasks = live.get(f"{url}/tasks", params={"step": "sq"}, headers=auth).json()["items"]
    assert {t["point"]: t["parameters"]["x"] for t in tasks}[8] == 100
