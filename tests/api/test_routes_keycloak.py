"""Every route against an external issuer (Keycloak's shape): RSA keys made here, the JWKS
served over HTTP on loopback, tokens signed with PyJWT. Mocked: nothing."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from orchestrator.settings import AuthSettings, Settings
from tests.api.jwks_server import JwksServer
from tests.api.test_auth import SigningKey, rsa_key
from tests.api.test_routes_auth import PUBLIC, SERVICE_ONLY, SPEC, _call, _fill, _routes
from tests.fixtures.api import bearer

ISSUER = "https://keycloak.test/realms/platform"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": "orchestrator",
        "sub": "u-1",
        "iat": now,
        "exp": now + 300,
        "groups": ["/proj/lab/p1/admin"],
        **overrides,
    }


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("kc-1")


@pytest.fixture
def keycloak(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([key.jwk()]) as server:
        yield server


@pytest.fixture
def http(app_settings: Settings, keycloak: JwksServer) -> Iterator[TestClient]:
    settings = app_settings.model_copy(
        update={"auth": AuthSettings(jwks_url=keycloak.url, issuer=ISSUER, audience="orchestrator")}
    )
    with TestClient(create_app(settings, run_campaigns=False)) as client:
        yield client


def test_every_route_with_real_tokens(http: TestClient, key: SigningKey):
    good = bearer(key.sign(_claims()))
    made = http.post("/v1/projects/lab/p1/campaigns", json=SPEC, headers=good)
    assert made.status_code == 201, made.text
    campaign = made.json()["id"]
    foreign = rsa_key("kc-1")  # same kid, someone else's key
    bad = {
        "expired": key.sign(_claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
        "wrong audience": key.sign(_claims(aud="another-service")),
        "wrong issuer": key.sign(_claims(iss="https://evil.test/realms/platform")),
        "foreign key": foreign.sign(_claims()),
        "alg none": _unsigned(_claims()),
    }
    other_project = bearer(key.sign(_claims(groups=["/proj/lab/p2/admin"])))
    checked = 0
    for method, template in _routes(http):
        if template in PUBLIC or not template.startswith("/v1/"):
            continue
        path = _fill(template, "lab/p1", campaign)
        for reason, token in bad.items():
            answer = _call(http, method, path, bearer(token))
            assert answer.status_code == 401, (method, path, reason, answer.text)
            assert token not in answer.text
        assert _call(http, method, path, other_project).status_code == 404, (method, path)
        if method == "GET":
            expected = 403 if template in SERVICE_ONLY else 200  # users never reach those
            assert _call(http, method, path, good).status_code == expected, (method, path)
        checked += 1
    assert checked >= 9


def test_token_without_sub_is_accepted(http: TestClient, key: SigningKey):
    """Keycloak's service-account (and "lightweight") access tokens may carry no `sub`: the
    caller is then named by `preferred_username`, else `azp`, else `client_id`."""
    claims = _claims(azp="svc-client", client_id="svc-client")
    del claims["sub"]
    token = bearer(key.sign(claims))
    made = http.post("/v1/projects/lab/p1/campaigns", json=SPEC, headers=token)
    assert made.status_code == 201, made.text
    campaign = made.json()["id"]
    assert http.get(f"/v1/projects/lab/p1/campaigns/{campaign}", headers=token).status_code == 200
    store = http.app.state.context.service.store  # type: ignore[attr-defined]
    assert store.get_campaign(campaign).owner == "svc-client"

    named = bearer(key.sign({**claims, "preferred_username": "robot"}))
    made = http.post("/v1/projects/lab/p1/campaigns", json=SPEC, headers=named)
    assert store.get_campaign(made.json()["id"]).owner == "robot"

    nobody = {k: v for k, v in claims.items() if k not in ("azp", "client_id")}
    answer = http.get(f"/v1/projects/lab/p1/campaigns/{campaign}", headers=bearer(key.sign(nobody)))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "missing claim sub"
