"""Every route of the OpenAPI document is authenticated and project-scoped."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from api.issuer import DEV_ISSUER, DevIssuer
from tests.fixtures.api import bearer

PUBLIC = {"/healthz", "/readyz", "/metrics", "/dev-issuer/jwks.json"}
# only the service's own identity (realm role orchestrator-service): end users get 403
SERVICE_ONLY = {"/v1/projects/{vlab_id}/{project_id}/hpc-cluster"}
SPEC = {
    "name": "r",
    "parameters": {"x": [1, 2]},
    "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
}


def _routes(http: TestClient) -> list[tuple[str, str]]:
    document = http.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "delete", "put", "patch"}
    ]


def _fill(path: str, project: str, campaign: str) -> str:
    vlab, proj = project.split("/")
    values = {"vlab_id": vlab, "project_id": proj, "campaign_id": campaign, "task": "sq:0"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(http: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body = SPEC if method == "POST" and path.endswith("/campaigns") else None
    return http.request(method, path, headers=headers, json=body)


@pytest.fixture
def campaign(http: TestClient, issuer: DevIssuer) -> str:
    made = http.post(
        "/v1/projects/lab/p1/campaigns", json=SPEC, headers=bearer(issuer.token(project="lab/p1"))
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_the_document_lists_the_contract_routes(http: TestClient):
    paths = {path for _, path in _routes(http)}
    base = "/v1/projects/{vlab_id}/{project_id}"
    for suffix in (
        "/campaigns",
        "/campaigns/{campaign_id}",
        "/campaigns/{campaign_id}/cancel",
        "/campaigns/{campaign_id}/restart",
        "/campaigns/{campaign_id}/tasks",
        "/campaigns/{campaign_id}/events",
        "/campaigns/{campaign_id}/tasks/{task}/logs",
        "/cluster",
    ):
        assert base + suffix in paths
    assert paths >= PUBLIC


def _bad_tokens(issuer: DevIssuer) -> dict[str, str]:
    other = DevIssuer(Path(tempfile.mkdtemp()))
    now = int(time.time())
    unsigned = jwt.encode(
        {
            "sub": "x",
            "iss": DEV_ISSUER,
            "aud": "orchestrator",
            "iat": now,
            "exp": now + 60,
            "groups": ["/proj/lab/p1/admin"],
        },
        key=None,
        algorithm="none",
    )
    return {
        "expired": issuer.token(project="lab/p1", ttl_seconds=-3600),
        "wrong audience": issuer.token(project="lab/p1", audience="someone-else"),
        "foreign key": other.token(project="lab/p1"),
        "alg none": unsigned,
        "garbage": "not.a.token",
    }


def test_every_route_refuses_missing_and_bad_tokens(
    http: TestClient, issuer: DevIssuer, campaign: str
):
    for method, template in _routes(http):
        if template in PUBLIC or not template.startswith("/v1/"):
            continue
        path = _fill(template, "lab/p1", campaign)
        missing = _call(http, method, path, {})
        assert missing.status_code == 401, (method, path)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.headers["content-type"] == "application/problem+json"
        for reason, token in _bad_tokens(issuer).items():
            answer = _call(http, method, path, bearer(token))
            assert answer.status_code == 401, (method, path, reason)
            assert "invalid_token" in answer.headers["www-authenticate"]
            assert token not in answer.text


def test_every_route_hides_other_projects(http: TestClient, issuer: DevIssuer, campaign: str):
    outsider = bearer(issuer.token(project="lab/p2", role="admin"))
    for method, template in _routes(http):
        if template in PUBLIC or not template.startswith("/v1/"):
            continue
        # p1's campaign through p1's path, and through the outsider's own project's path
        for project in ("lab/p1", "lab/p2"):
            path = _fill(template, project, campaign)
            answer = _call(http, method, path, outsider)
            if project == "lab/p2" and template in SERVICE_ONLY:
                assert answer.status_code == 403, (method, path, answer.text)
                continue
            if project == "lab/p2" and "{campaign_id}" not in template:
                assert answer.status_code in (200, 201, 202), (method, path, answer.text)
                continue
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert answer.json()["title"] == "Not Found"
    # nothing the outsider did touched p1's campaign
    member = bearer(issuer.token(project="lab/p1"))
    assert (
        http.get(f"/v1/projects/lab/p1/campaigns/{campaign}", headers=member).json()["state"]
        == "accepted"
    )


def test_members_read_and_submit_admins_also_delete(
    http: TestClient, issuer: DevIssuer, campaign: str
):
    member = bearer(issuer.token(project="lab/p1"))
    admin = bearer(issuer.token(project="lab/p1", role="admin"))
    url = f"/v1/projects/lab/p1/campaigns/{campaign}"
    assert http.post(url + "/cancel", headers=member).status_code == 202
    denied = http.delete(url, headers=member)
    assert denied.status_code == 403 and denied.json()["title"] == "Forbidden"
    assert http.delete(url, headers=admin).status_code == 204
    assert http.get(url, headers=admin).status_code == 404


def test_public_routes(http: TestClient, issuer: DevIssuer):
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    assert "orchestrator_http_requests_total" in http.get("/metrics").text
    keys = http.get("/dev-issuer/jwks.json").json()["keys"]
    assert keys and "d" not in keys[0]  # public parts only
