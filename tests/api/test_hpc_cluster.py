"""The provisioner's routes: only the service's own identity may call them."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from api.auth import SERVICE_ROLE
from api.issuer import DEV_ISSUER, KEY_FILE, DevIssuer
from cluster.provisioner import ProvisionerSettings, open_provisioner
from cluster.provisioner.settings import LocalBackendSettings
from orchestrator.settings import Settings
from tests.api.test_routes_auth import _bad_tokens
from tests.fixtures.api import bearer

URL = "/v1/projects/lab/p1/hpc-cluster"
EXPORTS = {
    "ORCHESTRATOR_CLUSTER__SSH__HOST": "127.0.0.1",
    "ORCHESTRATOR_CLUSTER__SSH__PORT": "2222",
    "ORCHESTRATOR_CLUSTER__SSH__USERNAME": "root",
    "ORCHESTRATOR_CLUSTER__SSH__KEY_FILE": "/state/id_ed25519",
    "ORCHESTRATOR_CLUSTER__SSH__KNOWN_HOSTS": "/state/known_hosts",
}


def service_token(app_settings: Settings, roles: list[str] | None = None) -> str:
    """A token of the service's own identity (a Keycloak service account), signed by the
    embedded issuer's key."""
    DevIssuer(app_settings.data_dir)  # makes the key if missing
    key = serialization.load_pem_private_key(
        (app_settings.data_dir / KEY_FILE).read_bytes(), password=None
    )
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": "orchestrator",
        "azp": "orchestrator-service",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": roles if roles is not None else [SERVICE_ROLE]},
    }
    kid = DevIssuer(app_settings.data_dir).kid
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


@pytest.fixture
def api(http: TestClient, tmp_path: Path) -> TestClient:
    settings = ProvisionerSettings(local=LocalBackendSettings(exports=EXPORTS))
    http.app.state.provisioner = open_provisioner(settings, data_dir=tmp_path)  # type: ignore[attr-defined]
    return http


def test_the_service_creates_reads_and_deletes(api: TestClient, app_settings: Settings):
    service = bearer(service_token(app_settings))
    assert api.get(URL, headers=service).status_code == 404
    created = api.post(URL, headers=service, json={"tier": "small"})
    assert created.status_code == 202, created.text
    body = created.json()
    assert (body["project"], body["kind"], body["state"]) == ("lab/p1", "local", "ready")
    assert body["connection"]["host"] == "127.0.0.1" and body["connection"]["port"] == 2222
    assert api.post(URL, headers=service).json()["name"] == body["name"]  # idempotent
    assert api.get(URL, headers=service).json()["state"] == "ready"
    deleted = api.delete(URL, headers=service)
    assert deleted.status_code == 202 and deleted.json()["state"] == "deleted"
    assert api.delete(URL, headers=service).json()["state"] == "deleted"  # safe to repeat
    bad = api.post(URL, headers=service, json={"tier": "huge"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert "unknown tier" in bad.json()["errors"][0]["message"]


def test_end_users_never_reach_it(api: TestClient, issuer: DevIssuer, app_settings: Settings):
    admin = bearer(issuer.token(project="lab/p1", role="admin"))
    outsider = bearer(issuer.token(project="lab/p2", role="admin"))
    no_role = bearer(service_token(app_settings, roles=["offline_access"]))
    for method in ("POST", "GET", "DELETE"):
        answer = api.request(method, URL, headers=admin)
        assert answer.status_code == 403, (method, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert api.request(method, URL, headers=no_role).status_code in (403, 404)
        assert api.request(method, URL, headers=outsider).status_code == 404
        missing = api.request(method, URL)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        for reason, token in _bad_tokens(issuer).items():
            answer = api.request(method, URL, headers=bearer(token))
            assert answer.status_code == 401, (method, reason)
            assert "invalid_token" in answer.headers["www-authenticate"]
    service = bearer(service_token(app_settings))
    assert api.get(URL, headers=service).status_code == 404  # nobody created anything


def test_in_the_openapi_document_with_its_errors(api: TestClient):
    paths = api.get("/openapi.json").json()["paths"]
    route = paths["/v1/projects/{vlab_id}/{project_id}/hpc-cluster"]
    assert set(route) == {"get", "post", "delete"}
    assert {"401", "403", "404"} <= set(route["post"]["responses"])
