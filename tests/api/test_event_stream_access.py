"""The live event stream re-checks who reads it: a stream opened with a token that then
expires ends with an `event: error` (401); the token is verified again, and the project's
membership checked, at most every RECHECK_SECONDS. Real tokens of the development issuer;
the server is uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import Principal, TokenVerifier
from api.errors import ApiError, AuthError, NotFound
from api.issuer import DevIssuer
from api.main import create_app
from api.stream_access import StreamAccess
from orchestrator.client._stream import _server_sent_events
from orchestrator.settings import Settings
from tests.fixtures.api import bearer, served

pytestmark = pytest.mark.timeout(60)
BASE = "/v1/projects/lab/p1/campaigns"
SPEC = {"name": "waits", "parameters": {"x": [1]}, "steps": {"e": {"command": "true"}}}


@pytest.fixture
def url(app_settings: Settings) -> Iterator[str]:
    """No leeway, so that a token stops at its `exp`; no runner, so the campaign never ends
    (its stream would go on for ever)."""
    settings = app_settings.model_copy(
        update={"auth": app_settings.auth.model_copy(update={"leeway": 0.0})}
    )
    with served(create_app(settings, run_campaigns=False)) as base:
        yield base


def test_a_stream_ends_with_an_error_event_when_its_token_expires(
    url: str, issuer: DevIssuer
) -> None:
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10.0)) as http:
        made = http.post(BASE, json=SPEC, headers=bearer(issuer.token(project="lab/p1")))
        assert made.status_code == 201, made.text
        events = f"{BASE}/{made.json()['id']}/events"
        short = issuer.token(project="lab/p1", ttl_seconds=2)
        opened = time.monotonic()
        lines: list[str] = []
        with http.stream(
            "GET", events, headers={**bearer(short), "Accept": "text/event-stream"}
        ) as stream:
            assert stream.status_code == 200
            lines += stream.iter_lines()  # a read timeout (10 s) if the stream never ends
        assert time.monotonic() - opened < 6

        assert lines[-3:] == ["event: error", lines[-2], ""]
        problem = json.loads(lines[-2].removeprefix("data: "))
        assert problem["status"] == 401 and problem["detail"] == "token expired"
        assert problem["instance"] == events
        assert not any(line.startswith("id:") for line in lines[-3:])  # resumable as before
        assert short not in "\n".join(lines)

        again = http.get(events, headers={**bearer(short), "Accept": "text/event-stream"})
        assert again.status_code == 401


class CountingVerifier(TokenVerifier):
    """A real verifier that counts its verifications."""

    calls = 0

    def verify(self, token: str) -> Principal:
        self.calls += 1
        return super().verify(token)


def _refusals(access: StreamAccess, times: int) -> list[ApiError | None]:
    async def ask() -> list[ApiError | None]:
        return [await access.refusal() for _ in range(times)]

    return asyncio.run(ask())


def _access(issuer: DevIssuer, verifier: TokenVerifier, token: str, project: str) -> StreamAccess:
    user = issuer.verifier().verify(token)
    return StreamAccess(verifier, token, project, user, recheck_seconds=0.3)


def test_the_token_is_verified_again_at_most_every_recheck_seconds(issuer: DevIssuer) -> None:
    verifier = CountingVerifier(
        issuer="orchestrator-dev-issuer", audience="orchestrator", keys=issuer.jwks["keys"]
    )
    access = _access(issuer, verifier, issuer.token(project="lab/p1"), "lab/p1")
    assert _refusals(access, 20) == [None] * 20
    assert verifier.calls == 0
    time.sleep(0.35)
    assert _refusals(access, 20) == [None] * 20
    assert verifier.calls == 1


def test_a_withdrawn_signing_key_ends_the_stream_at_the_next_check(
    issuer: DevIssuer, tmp_path: Path
) -> None:
    rotated = DevIssuer(tmp_path / "other").verifier()  # the issuer no longer has our key
    access = _access(issuer, rotated, issuer.token(project="lab/p1"), "lab/p1")
    assert _refusals(access, 1) == [None]
    time.sleep(0.35)
    (refusal,) = _refusals(access, 1)
    assert isinstance(refusal, AuthError) and refusal.reason == "unknown signing key"


def test_a_token_without_the_project_ends_the_stream_as_not_found(issuer: DevIssuer) -> None:
    access = _access(issuer, issuer.verifier(), issuer.token(project="lab/p2"), "lab/p1")
    time.sleep(0.35)
    (refusal,) = _refusals(access, 1)
    assert isinstance(refusal, NotFound)


def test_an_expired_token_is_refused_without_verifying(issuer: DevIssuer) -> None:
    verifier = CountingVerifier(
        issuer="orchestrator-dev-issuer", audience="orchestrator", keys=issuer.jwks["keys"]
    )
    access = _access(issuer, verifier, issuer.token(project="lab/p1", ttl_seconds=1), "lab/p1")
    access.user = Principal("u", None, {}, valid_until=time.time() - 1)
    (refusal,) = _refusals(access, 1)
    assert isinstance(refusal, AuthError) and refusal.reason == "token expired"
    assert verifier.calls == 0


def test_the_client_does_not_take_the_error_event_for_a_campaign_event() -> None:
    text = 'id: 1\nevent: task\ndata: {"seq": 1}\n\nevent: error\ndata: {"status": 401}\n\n'
    assert list(_server_sent_events(iter(text.split("\n")))) == [(1, '{"seq": 1}')]
