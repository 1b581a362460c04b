"""The front door on AWS Lambda: API Gateway HTTP API events (payload format 2.0, as AWS
documents them) fed to the real handler in-process; a real SQLite store; real RS256 tokens
checked against a JWKS served over HTTP on loopback. Mocked: nothing (Lambda's runtime, which
only calls `handler(event, context)`, is not here)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mangum.exceptions import LifespanFailure

from api import lambda_handler
from api.errors import DevIssuerRefused
from api.lambda_handler import FrontDoorHandler
from orchestrator.service import Service
from orchestrator.settings import AuthSettings, Settings
from tests.api.jwks_server import JwksServer
from tests.api.test_auth import SigningKey, rsa_key

ISSUER = "https://keycloak.test/realms/platform"
SPEC = {
    "name": "from-lambda",
    "parameters": {"x": [1, 2]},
    "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
}


def event(
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    base64_body: bool = False,
    query: str = "",
) -> dict[str, Any]:
    """An API Gateway HTTP API event, payload format 2.0, `$default` route and stage."""
    headers = {"host": "abc123.execute-api.eu-west-1.amazonaws.com", "user-agent": "pytest"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if body is not None:
        headers["content-type"] = "application/json"
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": headers["host"],
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.7",
                "userAgent": "pytest",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": base64_body,
        **(
            {"body": base64.b64encode(body).decode() if base64_body else body.decode()}
            if body is not None
            else {}
        ),
    }


def answer(response: dict[str, Any]) -> tuple[int, Any]:
    """The status and the decoded JSON body of a Lambda response (format 2.0)."""
    body = response.get("body", "")
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body) if body else None


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("kc-lambda")


@pytest.fixture
def keycloak(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([key.jwk()]) as server:
        yield server


@pytest.fixture
def settings(app_settings: Settings, keycloak: JwksServer) -> Settings:
    auth = AuthSettings(jwks_url=keycloak.url, issuer=ISSUER, dev_issuer="forbidden")
    return app_settings.model_copy(update={"auth": auth})


@pytest.fixture
def handler(settings: Settings) -> Iterator[FrontDoorHandler]:
    made = FrontDoorHandler(settings)
    yield made
    made.close()


def sign(key: SigningKey, *groups: str, subject: str = "u-1") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "orchestrator", "sub": subject, "iat": now, "exp": now + 300}
    return key.sign({**claims, "groups": list(groups)})


def test_health_without_a_token(handler: FrontDoorHandler):
    response = handler(event("GET", "/healthz"), None)
    assert answer(response) == (200, {"status": "ok"})
    assert response["isBase64Encoded"] is False


def test_campaigns_need_a_valid_token(handler: FrontDoorHandler, key: SigningKey):
    response = handler(event("GET", "/v1/projects/lab/p1/campaigns"), None)
    status, problem = answer(response)
    assert status == 401 and problem["status"] == 401
    assert response["headers"]["www-authenticate"].startswith("Bearer")
    assert response["headers"]["content-type"] == "application/problem+json"
    assert response["isBase64Encoded"] is False  # problem+json goes back as text
    forged = rsa_key(key.kid).sign({"iss": ISSUER, "aud": "orchestrator", "sub": "x"})
    assert (
        answer(handler(event("GET", "/v1/projects/lab/p1/campaigns", token=forged), None))[0] == 401
    )
    member = sign(key, "/proj/lab/p1/member")
    status, page = answer(
        handler(event("GET", "/v1/projects/lab/p1/campaigns", token=member), None)
    )
    assert status == 200 and page["items"] == []


def test_a_submitted_campaign_is_stored_and_readable(
    handler: FrontDoorHandler, settings: Settings, key: SigningKey
):
    member = sign(key, "/proj/lab/p1/member")
    base = "/v1/projects/lab/p1/campaigns"
    body = json.dumps(SPEC).encode()
    status, made = answer(handler(event("POST", base, token=member, body=body), None))
    assert status == 201, made
    campaign = made["id"]
    status, read = answer(handler(event("GET", f"{base}/{campaign}", token=member), None))
    assert status == 200 and read["state"] == "accepted" and read["points"] == 2
    status, page = answer(handler(event("GET", base, token=member, query="limit=5"), None))
    assert [item["id"] for item in page["items"]] == [campaign]
    # in the shared store: what a project's instance reads to run it
    service = Service(settings)
    try:
        assert service.status(campaign)["name"] == "from-lambda"
        assert service.campaign(campaign).project == "lab/p1"
    finally:
        service.close()
    # another execution environment of the function reads it too
    other = FrontDoorHandler(settings)
    try:
        assert answer(other(event("GET", f"{base}/{campaign}", token=member), None))[0] == 200
    finally:
        other.close()


def test_another_projects_campaign_is_not_found(handler: FrontDoorHandler, key: SigningKey):
    mine = sign(key, "/proj/lab/p1/admin")
    body = json.dumps(SPEC).encode()
    campaign = answer(
        handler(event("POST", "/v1/projects/lab/p1/campaigns", token=mine, body=body), None)
    )[1]["id"]
    theirs = sign(key, "/proj/lab/p2/admin", subject="u-2")
    for path in (
        f"/v1/projects/lab/p2/campaigns/{campaign}",
        f"/v1/projects/lab/p1/campaigns/{campaign}",
    ):
        status, problem = answer(handler(event("GET", path, token=theirs), None))
        assert status == 404 and problem["status"] == 404, path
    gone = handler(event("DELETE", f"/v1/projects/lab/p1/campaigns/{campaign}", token=theirs), None)
    assert answer(gone)[0] == 404
    assert (
        answer(
            handler(event("GET", f"/v1/projects/lab/p1/campaigns/{campaign}", token=mine), None)
        )[0]
        == 200
    )


def test_a_base64_encoded_body(handler: FrontDoorHandler, key: SigningKey):
    member = sign(key, "/proj/lab/p1/member")
    body = json.dumps({**SPEC, "name": "encoded-é"}).encode()
    request = event(
        "POST", "/v1/projects/lab/p1/campaigns", token=member, body=body, base64_body=True
    )
    assert request["body"] != body.decode()
    status, made = answer(handler(request, None))
    assert status == 422 and "name" in json.dumps(
        made
    )  # decoded, then validated: 'é' is not allowed
    request = event(
        "POST",
        "/v1/projects/lab/p1/campaigns",
        token=member,
        body=json.dumps({**SPEC, "name": "encoded"}).encode(),
        base64_body=True,
    )
    status, made = answer(handler(request, None))
    assert status == 201, made
    status, read = answer(
        handler(event("GET", f"/v1/projects/lab/p1/campaigns/{made['id']}", token=member), None)
    )
    assert status == 200 and read["name"] == "encoded"


def test_the_app_starts_once_per_execution_environment(
    handler: FrontDoorHandler, keycloak: JwksServer, key: SigningKey
):
    """The verifier (and its cached JWKS) lives across invocations: the issuer's keys are
    fetched once, not at every request (as with Mangum's own per-request lifespan)."""
    for n in range(4):
        token = sign(key, "/proj/lab/p1/member", subject=f"u-{n}")  # a new token each time
        assert (
            answer(handler(event("GET", "/v1/projects/lab/p1/campaigns", token=token), None))[0]
            == 200
        )
    assert keycloak.requests == 1


def test_it_needs_an_external_issuer(app_settings: Settings):
    with pytest.raises(DevIssuerRefused, match="ORCHESTRATOR_AUTH__JWKS_URL"):
        FrontDoorHandler(app_settings)


def test_a_failed_start_up_is_raised_not_served(settings: Settings, tmp_path):
    (tmp_path / "a-file").write_text("")
    broken = settings.model_copy(update={"db_url": f"sqlite:///{tmp_path}/a-file/store.db"})
    with pytest.raises(LifespanFailure):
        FrontDoorHandler(broken)


def test_the_entry_point_builds_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, key: SigningKey
):
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(settings.data_dir / "no-such.toml"))
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ORCHESTRATOR_AUTH__JWKS_URL", str(settings.auth.jwks_url))
    monkeypatch.setenv("ORCHESTRATOR_AUTH__ISSUER", ISSUER)
    lambda_handler._handler.cache_clear()
    try:
        assert answer(lambda_handler.handler(event("GET", "/healthz"), None))[0] == 200
        member = sign(key, "/proj/lab/p1/member")
        path = "/v1/projects/lab/p1/campaigns"
        assert answer(lambda_handler.handler(event("GET", path, token=member), None))[0] == 200
        assert lambda_handler._handler.cache_info().misses == 1  # built once
    finally:
        if lambda_handler._handler.cache_info().currsize:
            lambda_handler._handler().close()
        lambda_handler._handler.cache_clear()
