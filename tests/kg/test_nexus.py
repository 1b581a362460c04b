"""The Nexus client against `NexusServer`, a small Nexus-Delta-compatible HTTP server on
loopback that stands in for Blue Brain Nexus Delta (which cannot run here): real HTTP, the
documented create / update-with-rev / conflict semantics, bearer tokens."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from orchestrator.kg import (
    KnowledgeGraphRejected,
    KnowledgeGraphSettings,
    KnowledgeGraphUnavailable,
    NexusKnowledgeGraph,
    NexusSettings,
    Registrable,
    open_knowledge_graph,
    to_jsonld,
)
from tests.kg.nexus_server import NexusServer
from tests.kg.sample import campaign, output, task

TOKEN = "s3cr3t-token-value"


@pytest.fixture
def nexus() -> Iterator[NexusServer]:
    with NexusServer(TOKEN) as server:
        yield server


def _client(url: str, token: str = TOKEN) -> NexusKnowledgeGraph:
    settings = NexusSettings(base_url=url, token=SecretStr(token), attempts=2, backoff=0.01)
    return NexusKnowledgeGraph(settings)


def test_create_then_reregister_updates_without_duplicates(nexus: NexusServer) -> None:
    activity = task(state="running")
    items: list[Registrable] = [campaign(), activity, output(activity)]
    with _client(nexus.url) as kg:
        kg.register(items)
        assert {key[2] for key in nexus.resources} == {item.iri for item in items}
        assert {key[:2] for key in nexus.resources} == {("lab", "p1")}  # the item's project
        assert all(r["rev"] == 1 for r in nexus.resources.values())

        kg.register(items)  # a retried registration: same ids, nothing changes
        assert len(nexus.resources) == 3
        assert all(r["rev"] == 1 for r in nexus.resources.values())

        finished = task(state="succeeded")
        kg.register([finished])  # a changed item: a new revision of the same resource
        stored = nexus.resources[("lab", "p1", finished.iri)]
        assert stored["rev"] == 2 and stored["source"] == to_jsonld(finished)
        assert len(nexus.resources) == 3
        fetched = kg.fetch(finished)
        assert fetched is not None and fetched["_rev"] == 2 and fetched["wf:state"] == "succeeded"
    url_id = quote(finished.iri, safe="")
    assert ("PUT", f"/v1/resources/lab/p1/_/{url_id}?rev=1") in nexus.requests


def test_configured_org_and_project_and_open_knowledge_graph(
    nexus: NexusServer, tmp_path: Path
) -> None:
    settings = KnowledgeGraphSettings(
        kind="nexus",
        nexus=NexusSettings(base_url=nexus.url, org="bbp", project="sims", token=SecretStr(TOKEN)),
    )
    kg = open_knowledge_graph(settings, tmp_path)
    try:
        kg.register([campaign()])
    finally:
        kg.close()
    assert list(nexus.resources) == [("bbp", "sims", campaign().iri)]


def test_wrong_token_is_rejected_without_showing_it(nexus: NexusServer) -> None:
    wrong = "wrong-token-do-not-print"
    with _client(nexus.url, token=wrong) as kg, pytest.raises(KnowledgeGraphRejected) as caught:
        kg.register([campaign()])
    assert caught.value.status == 401
    assert not isinstance(caught.value, KnowledgeGraphUnavailable)
    assert "401" in str(caught.value) and "token" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert len(nexus.requests) == 1  # not retried


def test_server_down_is_unavailable() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kg = _client(f"http://127.0.0.1:{port}/v1")
    with kg, pytest.raises(KnowledgeGraphUnavailable, match="ConnectError") as caught:
        kg.register([campaign()])
    assert TOKEN not in str(caught.value)


def test_503_is_unavailable_and_a_brief_one_is_retried(nexus: NexusServer) -> None:
    with _client(nexus.url) as kg:
        nexus.fail_with = 503
        with pytest.raises(KnowledgeGraphUnavailable, match="503"):
            kg.register([campaign()])
        assert len(nexus.requests) == 2  # `attempts` quick tries, then the outbox's turn
        nexus.fail_with = None
        nexus.fail_times = 1  # one 503, then fine: the quick retry is enough
        kg.register([campaign()])
    assert nexus.resources[("lab", "p1", campaign().iri)]["rev"] == 1


def test_an_update_after_another_writer_uses_the_latest_rev(nexus: NexusServer) -> None:
    with _client(nexus.url) as kg:
        kg.register([campaign()])
        nexus.resources[("lab", "p1", campaign().iri)]["rev"] = 5  # another writer moved on
        kg.register([campaign(state="succeeded")])  # conflict: fetch rev 5, update to 6
        assert nexus.resources[("lab", "p1", campaign().iri)]["rev"] == 6
