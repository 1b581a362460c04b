"""GET …/campaigns/{id} served from the in-process status cache (api/status_cache.py): one
store read per window however many pollers, read-your-writes through this API, staleness
bounded for other writers, project isolation unchanged, ETag / If-None-Match."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.issuer import DevIssuer
from api.status_cache import FRESH_SECONDS, StatusCache
from orchestrator.errors import CampaignNotFound
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.fixtures.api import bearer

BASE = "/v1/projects/lab/p1/campaigns"
SPEC = {
    "name": "cached",
    "parameters": {"x": {"range": [0, 3]}},
    "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
}


# ------------------------------------------------------------------ the cache on its own
class FakeStore:
    """`read` for a StatusCache: counts calls, can be held mid-read, or fail."""

    def __init__(self) -> None:
        self.reads = 0
        self.state = "running"
        self.release = threading.Event()
        self.release.set()
        self.missing = False

    def read(self, campaign_id: str) -> dict[str, Any]:
        self.reads += 1
        state = self.state  # what the store held when the read began
        self.release.wait(5)
        if self.missing:
            raise CampaignNotFound(campaign_id)
        return {"id": campaign_id, "project": "lab/p1", "state": state}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_misses_share_one_read_and_hits_read_nothing() -> None:
    store, clock = FakeStore(), Clock()
    cache = StatusCache(store.read, fresh_seconds=0.5, clock=clock)

    async def scenario() -> None:
        entries = await asyncio.gather(*(cache.get("c1") for _ in range(50)))
        assert store.reads == 1 and len({e.body for e in entries}) == 1
        assert json.loads(entries[0].body)["state"] == "running"
        clock.now += 0.4
        assert cache.fresh("c1") is entries[0]
        await cache.get("c1")
        assert store.reads == 1
        clock.now += 0.2  # past the window
        assert cache.fresh("c1") is None
        store.state = "succeeded"
        assert json.loads((await cache.get("c1")).body)["state"] == "succeeded"
        assert store.reads == 2

    asyncio.run(scenario())


def test_refresh_ahead_reads_again_before_the_entry_runs_out() -> None:
    """A request past `refresh_ahead` gets the entry at once and starts one background read;
    the entry it brings serves the next requests, so steady pollers never wait on the store."""
    store, clock = FakeStore(), Clock()
    cache = StatusCache(store.read, fresh_seconds=0.5, refresh_ahead=0.25, clock=clock)

    async def scenario() -> None:
        first = await cache.get("c1")
        clock.now += 0.1
        assert cache.fresh("c1") is first and store.reads == 1  # young: no read
        clock.now += 0.2  # 0.3 s old: still served, and a read starts (one for all)
        store.state = "succeeded"
        store.release.clear()  # the store is slow: the read is held
        assert [cache.fresh("c1") for _ in range(20)] == [first] * 20
        await asyncio.sleep(0.05)
        assert store.reads == 2  # one read under way, none waited on it
        store.release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if cache.fresh("c1") is not first:
                break
        newer = cache.fresh("c1")
        assert newer is not None and json.loads(newer.body)["state"] == "succeeded"
        assert store.reads == 2

    asyncio.run(scenario())


def test_invalidate_drops_the_entry_and_a_read_under_way() -> None:
    store, clock = FakeStore(), Clock()
    cache = StatusCache(store.read, fresh_seconds=0.5, clock=clock)

    async def scenario() -> None:
        await cache.get("c1")
        clock.now += 1  # expired
        store.release.clear()  # the next read hangs after seeing "running" …
        slow = asyncio.ensure_future(cache.get("c1"))
        await asyncio.sleep(0.05)
        store.state = "cancelled"  # … a write lands meanwhile and invalidates
        cache.invalidate("c1")
        fresh = asyncio.ensure_future(cache.get("c1"))
        store.release.set()
        old, new = await slow, await fresh
        assert json.loads(old.body)["state"] == "running"  # its caller asked before the write
        assert json.loads(new.body)["state"] == "cancelled"
        assert cache.fresh("c1") == new  # the older read was not stored over it

    asyncio.run(scenario())


def test_errors_are_not_cached() -> None:
    store = FakeStore()
    store.missing = True
    cache = StatusCache(store.read)

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(CampaignNotFound):
                await cache.get("gone")
        assert store.reads == 2

    asyncio.run(scenario())


# ------------------------------------------------------------------ the route
@pytest.fixture
def auth(issuer: DevIssuer) -> dict[str, str]:
    return bearer(issuer.token(project="lab/p1", role="admin"))


@pytest.fixture
def campaign(http: TestClient, auth: dict[str, str]) -> str:
    made = http.post(BASE, json=SPEC, headers=auth)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_writes_through_the_api_show_at_once(
    http: TestClient, auth: dict[str, str], campaign: str
) -> None:
    url = f"{BASE}/{campaign}"
    assert http.get(url, headers=auth).json()["state"] == "accepted"  # now cached
    assert http.post(f"{url}/cancel", headers=auth).status_code == 202
    assert http.get(url, headers=auth).json()["state"] == "cancelled"
    assert http.post(f"{url}/restart", headers=auth).status_code == 202
    assert http.get(url, headers=auth).json()["state"] == "accepted"
    http.post(f"{url}/cancel", headers=auth)
    assert http.get(url, headers=auth).json()["state"] == "cancelled"
    assert http.delete(url, headers=auth).status_code == 204
    assert http.get(url, headers=auth).status_code == 404


def test_other_writers_show_within_the_window(
    http: TestClient, auth: dict[str, str], campaign: str, app_settings: Settings
) -> None:
    url = f"{BASE}/{campaign}"
    assert http.get(url, headers=auth).json()["state"] == "accepted"
    other = Service(app_settings)  # another process's view of the same store
    try:
        other.cancel(campaign)
    finally:
        other.close()
    changed = time.monotonic()
    while http.get(url, headers=auth).json()["state"] != "cancelled":
        assert time.monotonic() - changed < FRESH_SECONDS + 0.5
        time.sleep(0.05)


def test_a_cached_status_is_still_hidden_from_other_projects(
    http: TestClient, issuer: DevIssuer, auth: dict[str, str], campaign: str
) -> None:
    assert http.get(f"{BASE}/{campaign}", headers=auth).status_code == 200  # now cached
    other = bearer(issuer.token(project="lab/p2", role="admin"))
    for path in (f"/v1/projects/lab/p2/campaigns/{campaign}", f"{BASE}/{campaign}"):
        answer = http.get(path, headers=other)
        assert answer.status_code == 404, path
        assert "accepted" not in answer.text and "cached" not in answer.text
    assert http.get(f"{BASE}/{campaign}").status_code == 401  # no token: no status


def test_etag_and_if_none_match(http: TestClient, auth: dict[str, str], campaign: str) -> None:
    url = f"{BASE}/{campaign}"
    first = http.get(url, headers=auth)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"')
    assert first.headers["content-type"] == "application/json"
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = http.get(url, headers={**auth, "If-None-Match": sent})
        assert unchanged.status_code == 304 and unchanged.content == b"", sent
        assert unchanged.headers["etag"] == etag
    assert http.get(url, headers={**auth, "If-None-Match": '"other"'}).status_code == 200
    http.post(f"{url}/cancel", headers=auth)
    changed = http.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
