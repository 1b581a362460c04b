"""The Nexus client against `NexusServer`, a small Nexus-Delta-compatible HTTP server on
loopback that stands in for Blue Brain Nexus Delta (which cannot run here): real HTTP, the
documented create / update-with-rev / conflict semantics, bearer tokens, files linked from
an S3 storage, tags."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
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
    OutputEntity,
    Registrable,
    open_knowledge_graph,
    to_jsonld,
)
from orchestrator.kg.nexus import file_iri
from tests.orchestrator.kg.nexus_server import NexusServer
from tests.orchestrator.kg.sample import T0, campaign, output, task

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


# ---------------------------------------------------------------------- files on S3
STORAGE = "results-s3"
DATA = b"trace bytes\n"


def _on_s3(nexus: NexusServer, data: bytes = DATA, bucket: str = "results") -> OutputEntity:
    """An output in the storage's bucket, whose object holds `data`; its digest is DATA's."""
    nexus.add_s3_storage("lab", "p1", STORAGE, "results")
    made = output(task(outputs=("trace.npz",)))
    made = replace(
        made,
        location=made.location.replace("s3://results/", f"s3://{bucket}/"),
        size=len(DATA),
        digest="sha256:" + hashlib.sha256(DATA).hexdigest(),
    )
    nexus.objects[("results", made.location.removeprefix("s3://results/"))] = data
    return made


def _with_storage(url: str) -> NexusKnowledgeGraph:
    settings = NexusSettings(
        base_url=url, token=SecretStr(TOKEN), attempts=2, backoff=0.01, storage=STORAGE
    )
    return NexusKnowledgeGraph(settings)


def test_an_output_on_the_storage_bucket_is_linked_as_a_file_once(nexus: NexusServer) -> None:
    made = _on_s3(nexus)
    with _with_storage(nexus.url) as kg:
        kg.register([made])
        kg.register([made])  # a retried registration: 409 on the file, read, not a copy
        file = kg.fetch_file(made)
        resource = kg.fetch(made)
    key = ("lab", "p1", file_iri(made))
    assert list(nexus.files) == [key] and nexus.created[key] == 1
    assert nexus.files[key] | {"bytes": 0} == {
        "storage": STORAGE,
        "path": made.location.removeprefix("s3://results/"),
        "filename": "trace.npz",
        "mediaType": made.media_type,
        "bytes": 0,
        "digest": hashlib.sha256(DATA).hexdigest(),
    }
    assert file is not None and file["_digest"]["_algorithm"] == "SHA-256"
    assert resource is not None and resource["schema:distribution"] == {"@id": file_iri(made)}
    assert resource["_rev"] == 1 and nexus.created[("lab", "p1", made.iri)] == 1
    url_id = quote(file_iri(made), safe="")
    link = f"/v1/files/lab/p1/{url_id}?storage={STORAGE}"
    assert [r for r in nexus.requests if r[0] == "PUT" and "/files/" in r[1]] == [("PUT", link)] * 2
    assert sum(1 for r in nexus.requests if "/storages/" in r[1]) == 1  # the bucket, once
    assert to_jsonld(made).get("schema:distribution") is None  # only what Nexus is sent


def test_outputs_elsewhere_stay_resources(nexus: NexusServer) -> None:
    elsewhere = [
        _on_s3(nexus, bucket="other-bucket"),
        replace(_on_s3(nexus), relpath="local.txt", location="file:///data/r/local.txt"),
    ]
    with _with_storage(nexus.url) as kg:
        kg.register(elsewhere)
    assert sum(1 for r in nexus.requests if "/storages/" in r[1]) == 1
    with _client(nexus.url) as kg:  # no storage configured: not even the storage is asked
        kg.register([_on_s3(nexus)])  # (the same output as the first one)
    assert sum(1 for r in nexus.requests if "/storages/" in r[1]) == 1
    assert not nexus.files and not any("/files/" in r[1] for r in nexus.requests)
    assert all("schema:distribution" not in r["source"] for r in nexus.resources.values())
    assert len(nexus.resources) == 2


def test_a_file_whose_digest_differs_is_refused_naming_both(nexus: NexusServer) -> None:
    made = _on_s3(nexus, data=b"other bytes")
    with _with_storage(nexus.url) as kg, pytest.raises(KnowledgeGraphRejected) as caught:
        kg.register([made])
    theirs = hashlib.sha256(b"other bytes").hexdigest()
    assert theirs in str(caught.value) and made.digest.partition(":")[2] in str(caught.value)
    assert ("lab", "p1", made.iri) not in nexus.resources  # the resource is not written
    with _with_storage(nexus.url) as kg, pytest.raises(KnowledgeGraphRejected, match=theirs):
        kg.register([made])  # nor on a retry (409, then the file's digest is read)


def test_a_digest_not_computed_yet_is_not_compared(nexus: NexusServer) -> None:
    made = _on_s3(nexus, data=b"other bytes")
    nexus.digest_pending = True
    with _with_storage(nexus.url) as kg:
        kg.register([made])
    assert ("lab", "p1", made.iri) in nexus.resources


def test_a_missing_storage_is_a_rejection(nexus: NexusServer) -> None:
    made = _on_s3(nexus)
    nexus.storages.clear()
    with _with_storage(nexus.url) as kg, pytest.raises(KnowledgeGraphRejected, match=STORAGE):
        kg.register([made])


# ----------------------------------------------------------------------------- tags
def test_an_ended_campaign_is_tagged_with_its_final_state(nexus: NexusServer) -> None:
    ended = campaign(state="succeeded", ended_at=T0 + timedelta(minutes=5))
    key = ("lab", "p1", ended.iri)
    with _client(nexus.url) as kg:
        kg.register([campaign()])  # running: no tag
        assert nexus.resources[key]["tags"] == {}
        kg.register([ended])  # rev 2 holds the end; tagging it makes rev 3
        assert nexus.resources[key]["tags"] == {"succeeded": 2}
        assert nexus.resources[key]["rev"] == 3
        tagged = kg.fetch(ended, tag="succeeded")
        assert tagged is not None and tagged["_rev"] == 2 and tagged["wf:state"] == "succeeded"
        assert kg.fetch(ended, tag="failed") is None

        kg.register([ended])  # a retried registration: neither a revision nor a tag more
        assert nexus.resources[key]["rev"] == 3
        assert nexus.resources[key]["tags"] == {"succeeded": 2}
    assert ("POST", f"/v1/resources/lab/p1/_/{quote(ended.iri, safe='')}/tags?rev=2") in (
        nexus.requests
    )


def test_a_campaign_ended_again_moves_its_tag(nexus: NexusServer) -> None:
    first = campaign(state="failed", ended_at=T0 + timedelta(minutes=5))
    second = campaign(state="failed", ended_at=T0 + timedelta(minutes=9))
    key = ("lab", "p1", first.iri)
    with _client(nexus.url) as kg:
        kg.register([campaign(), first])  # rev 1, end at 2, tagged: 3
        kg.register([campaign()])  # restarted: 4
        kg.register([second])  # ended again at 5, the tag moves there: 6
        assert nexus.resources[key]["tags"] == {"failed": 5}
        assert nexus.resources[key]["rev"] == 6
        tagged = kg.fetch(second, tag="failed")
        assert tagged is not None and tagged["_rev"] == 5
        assert second.ended_at is not None
        assert tagged["prov:endedAtTime"]["@value"] == second.ended_at.isoformat()
        kg.register([campaign(state="succeeded", ended_at=T0 + timedelta(minutes=20))])
        assert nexus.resources[key]["tags"] == {"failed": 5, "succeeded": 7}


def test_tagging_after_another_writer_uses_the_latest_rev(nexus: NexusServer) -> None:
    ended = campaign(state="cancelled", ended_at=T0 + timedelta(minutes=5))
    with _client(nexus.url) as kg:
        kg.register([campaign()])
        nexus.resources[("lab", "p1", ended.iri)]["rev"] = 5  # another writer moved on
        kg.register([ended])  # written as 6; the tag POST with ?rev=6 succeeds
        assert nexus.resources[("lab", "p1", ended.iri)]["tags"] == {"cancelled": 6}
