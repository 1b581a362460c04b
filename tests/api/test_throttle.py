"""`POST …/campaigns/{id}/throttle` against a real server (uvicorn, its runner on a
LocalCluster), through the Python client: applied live, and each refusal as problem+json."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.client import Client, ClientError
from tests.api.test_client import Server, client, server, slow_spec  # noqa: F401
from tests.helpers import wait_for


def _events(api: Client, cid: str) -> list[dict]:
    return list(api.events(cid))


def test_a_running_campaign_is_throttled_over_http(server: Server, client: Client):  # noqa: F811
    spec = slow_spec("throttle-http")
    spec["parameters"] = {"x": {"range": [0, 6]}}
    cid = client.submit(spec)["id"]
    wait_for(lambda: client.status(cid)["state"] == "running", 60, "the campaign running")
    status = client.throttle(cid, 1)
    assert status["id"] == cid and status["throttle"] == {"window": 1, "steps": {}}
    assert client.status(cid)["throttle"]["window"] == 1
    applied = wait_for(
        lambda: [e for e in _events(client, cid) if e["kind"] == "throttle-applied"],
        60,
        "the runner applying the throttle",
    )
    assert applied[0]["message"] == "window: at most 1 point(s) in flight"
    assert client.wait(cid, poll=0.1, timeout=120)["state"] == "succeeded"
    with pytest.raises(ClientError) as finished:
        client.throttle(cid, 2)
    assert finished.value.status == 409 and "already succeeded" in str(finished.value)


def test_refusals_are_problems(server: Server, client: Client):  # noqa: F811
    spec = slow_spec("throttle-refused")
    cid = client.submit(spec)["id"]
    with pytest.raises(ClientError) as unknown:
        client.throttle(cid, 2, step="nope")
    assert unknown.value.status == 422
    assert unknown.value.errors[0]["field"] == "step" and "no step 'nope'" in str(unknown.value)
    with pytest.raises(ClientError) as not_batch:
        client.throttle(cid, 2, step="nap")
    assert not_batch.value.status == 422 and "not a batch step" in str(not_batch.value)
    with pytest.raises(ClientError) as zero:
        client.throttle(cid, 0)
    assert zero.value.status == 422 and zero.value.errors[0]["field"] == "body.limit"

    url = f"{server.url}/v1/projects/lab/other/campaigns/{cid}/throttle"
    token = server.issuer.token(project="lab/other")
    other = httpx.post(url, json={"limit": 1}, headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    client.cancel(cid)
    client.wait(cid, poll=0.1, timeout=60)
