"""The Python client against a real server: uvicorn on a loopback port, in a thread, running
campaigns on a real LocalCluster. Dropped connections are made by wrapping the client's real
HTTP transport (the client's own `transport` seam); everything else is the real thing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api.issuer import DevIssuer
from api.main import create_app
from cluster import LocalSettings
from orchestrator.client import Client, ClientError, WaitTimeout
from orchestrator.client import _client as client_module
from orchestrator.errors import SettingsError, SpecError
from orchestrator.settings import ClusterSettings, Settings
from tests.conftest import fast_engine
from tests.fixtures.api import served

PROJECT = "lab/client"


def spec(name: str, points: int = 6, **sq: Any) -> dict[str, Any]:
    step = {"run": "tests.workloads:square", "foreach": True, **sq}
    return {
        "name": name,
        "parameters": {"x": {"range": [0, points]}},
        "steps": {
            "sq": step,
            "total": {"run": "tests.workloads:total_of_squares", "needs": ["sq"]},
        },
    }


def slow_spec(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "parameters": {"x": {"range": [0, 4]}},
        "steps": {
            "nap": {"run": "tests.workloads:slow", "foreach": True, "with": {"seconds": 1.0}}
        },
    }


@dataclass
class Server:
    url: str
    issuer: DevIssuer

    def client(self, project: str = PROJECT, role: str = "member", **kwargs: Any) -> Client:
        return Client(self.url, self.issuer.token(project=project, role=role), project, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (like `app_settings`: its own data folder, one worker)."""
    root = tmp_path_factory.mktemp("client-server")
    settings = Settings(
        data_dir=root / "data",
        results_url=str(root / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=LocalSettings(n_workers=1, dashboard_address=None)),
    )
    with served(create_app(settings)) as url:
        yield Server(url, DevIssuer(settings.data_dir))


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with server.client() as made:
        yield made


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "BACKOFF_SECONDS", 0.01)


# ------------------------------------------------------------------------------ the flow
def test_submit_follow_wait_and_inspect(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec("client-flow")))
    submitted = client.submit(path)
    cid = submitted["id"]
    assert submitted["points"] == 6 and submitted["project"] == PROJECT
    assert submitted["state"] in {"accepted", "running"}

    followed = list(client.events(cid, follow=True))
    assert [e["seq"] for e in followed] == list(range(1, len(followed) + 1))
    assert followed[-1]["kind"] == "campaign" and followed[-1]["state"] == "succeeded"

    seen: list[dict] = []
    final = client.wait(cid, progress=seen.append, poll=0.1, timeout=60)
    assert final["state"] == "succeeded" and final["counts"]["succeeded"] == 7
    assert seen == [final]
    assert client.wait(cid, progress=True)["state"] == "succeeded"
    printed = capsys.readouterr().err
    assert f"campaign {cid}: succeeded" in printed and "sq: 6/6 done (6 succeeded)" in printed

    monkeypatch.setattr(client_module, "TASK_PAGE", 2)
    monkeypatch.setattr(client_module, "EVENT_PAGE", 3)
    squares = list(client.tasks(cid, step="sq"))
    assert sorted(t["point"] for t in squares) == list(range(6))
    assert [t["result"] for t in client.tasks(cid, step="total")] == [55.0]
    assert len(list(client.tasks(cid, state="succeeded"))) == 7
    assert list(client.events(cid)) == followed
    assert [e["seq"] for e in client.events(cid, after=4)] == list(range(5, len(followed) + 1))

    logs = client.logs(cid, "sq/2")
    assert logs.startswith("task sq:2: succeeded")
    assert "succeeded" in client.logs(cid, "total")
    assert cid in [c["id"] for c in client.list(name="client-flow")]
    assert client.status(cid) == final
    cluster = client.cluster()
    assert cluster["started"] and cluster["workers"] == 1


def test_follow_resumes_after_a_dropped_connection(server: Server):
    transport = DropFirstStream(after_events=2)
    with server.client(transport=transport) as client:
        cid = client.submit(spec("client-drop", points=3))["id"]
        followed = list(client.events(cid, follow=True))
    assert [e["seq"] for e in followed] == list(range(1, len(followed) + 1))
    assert followed[-1]["kind"] == "campaign" and followed[-1]["state"] == "succeeded"
    # the cut came after event 2, in the middle of event 3: resumed after the last whole one
    assert transport.last_event_ids[:2] == ["0", "2"]


def test_cancel_restart_delete_and_wait_timeout(server: Server, client: Client):
    cid = client.submit(slow_spec("client-cancel"))["id"]
    with pytest.raises(WaitTimeout) as timed_out:
        client.wait(cid, poll=0.05, timeout=0.2)
    assert cid in str(timed_out.value) and isinstance(timed_out.value, TimeoutError)
    client.cancel(cid, step="nap", point=3)
    client.cancel(cid)
    assert client.wait(cid, poll=0.1, timeout=60)["state"] == "cancelled"
    with pytest.raises(ClientError) as conflict:
        client.cancel(cid, point=99)
    assert conflict.value.status == 409
    assert client.restart(cid)["state"] in {"accepted", "running"}
    client.cancel(cid)
    assert client.wait(cid, poll=0.1, timeout=60)["state"] == "cancelled"
    with pytest.raises(ClientError) as forbidden:
        client.delete(cid)
    assert forbidden.value.status == 403 and "delete" in str(forbidden.value)
    with server.client(role="admin") as admin:
        admin.delete(cid)
    with pytest.raises(ClientError) as gone:
        client.status(cid)
    assert gone.value.status == 404 and gone.value.title == "Not Found"


# -------------------------------------------------------------------------- idempotency
def test_the_same_idempotency_key_gives_one_campaign(client: Client):
    first = client.submit(spec("client-idem", points=2), idempotency_key="key-1")
    again = client.submit(spec("client-idem", points=2), idempotency_key="key-1")
    assert first["id"] == again["id"]
    assert [c["id"] for c in client.list(name="client-idem")] == [first["id"]]


def test_a_submit_whose_answer_was_lost_is_retried_into_one_campaign(server: Server):
    transport = LoseFirstPostAnswer()
    with server.client(transport=transport) as client:
        made = client.submit(spec("client-lost", points=2))
        assert [c["id"] for c in client.list(name="client-lost")] == [made["id"]]
    keys = transport.idempotency_keys
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]


def test_reads_are_retried_on_503_but_cancel_is_not(server: Server, client: Client):
    cid = client.submit(spec("client-retry", points=2))["id"]
    transport = UnavailableOnce()
    with server.client(transport=transport) as flaky:
        assert flaky.status(cid)["id"] == cid
        assert transport.calls == 2
        transport.failed = False
        with pytest.raises(ClientError) as unavailable:
            flaky.cancel(cid)
        assert unavailable.value.status == 503 and transport.calls == 3


def test_list_follows_cursors_up_to_the_limit(client: Client, monkeypatch: pytest.MonkeyPatch):
    for _ in range(3):
        client.submit(spec("client-page", points=1))
    monkeypatch.setattr(client_module, "LIST_PAGE", 2)
    everything = client.list(name="client-page")
    assert len(everything) == 3 and len({c["id"] for c in everything}) == 3
    assert everything == sorted(everything, key=lambda c: -c["created_at"])
    newest = [c["id"] for c in client.list(name="client-page", limit=2)]
    assert newest == [c["id"] for c in everything[:2]]


# ------------------------------------------------------------------------------- errors
def test_an_invalid_spec_is_a_422_naming_the_field(client: Client, tmp_path: Path):
    bad = spec("client-bad", resources={"memory": "lots"})
    with pytest.raises(ClientError) as invalid:
        client.submit(bad)
    error = invalid.value
    assert error.status == 422 and error.title == "Invalid campaign spec"
    assert "steps.sq.resources.memory" in {e["field"] for e in error.errors}
    assert "steps.sq.resources.memory: " in str(error)
    assert [i.path for i in error.issues] == [e["field"] for e in error.errors]
    assert client.list(name="client-bad") == []
    with pytest.raises(SpecError, match="cannot read"):
        client.submit(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="mapping"):
        client.submit(str(tmp_path / "list.yaml"))


def test_another_projects_token_is_404_and_the_token_is_never_shown(server: Server, client: Client):
    cid = client.submit(spec("client-private", points=1))["id"]
    token = server.issuer.token(project="lab/other")
    with Client(server.url, token, PROJECT) as stranger:
        with pytest.raises(ClientError) as not_member:
            stranger.status(cid)
        shown = [str(not_member.value), repr(not_member.value), repr(stranger), str(stranger)]
    assert not_member.value.status == 404
    with Client(server.url, token, "lab/other") as other, pytest.raises(ClientError) as hidden:
        other.status(cid)
    assert hidden.value.status == 404 and "lab/other" in str(hidden.value)
    shown += [str(hidden.value), repr(hidden.value), str(hidden.value.detail)]
    assert all(token not in text and token[-20:] not in text for text in shown)
    assert "token=***" in repr(stranger)


def test_an_unreachable_server_is_named_and_the_token_not(server: Server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = server.issuer.token(project=PROJECT)
    with Client(f"http://127.0.0.1:{port}/", token, PROJECT, timeout=2) as client:
        with pytest.raises(ClientError) as unreachable:
            client.status("anything")
        with pytest.raises(ClientError):
            list(client.events("anything", follow=True))
    error = unreachable.value
    assert error.status is None and f"http://127.0.0.1:{port}" in str(error)
    assert token not in str(error) and token not in repr(error)


def test_an_answer_that_is_not_json_says_so():
    """A web server that is not the orchestrator (httpx's MockTransport stands in for it)."""
    page = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>hello</html>"))
    client = Client("http://example.test", "secret-token", PROJECT, transport=page)
    with client, pytest.raises(ClientError, match="other than JSON: is it the orchestrator"):
        client.status("anything")


def test_from_settings_names_what_is_missing(server: Server, monkeypatch: pytest.MonkeyPatch):
    for name in ("ORCHESTRATOR_URL", "ORCHESTRATOR_TOKEN", "ORCHESTRATOR_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORCHESTRATOR_URL", server.url)
    with pytest.raises(SettingsError) as missing:
        Client.from_settings()
    assert str(missing.value).startswith("ORCHESTRATOR_TOKEN and ORCHESTRATOR_PROJECT are not set")
    token = server.issuer.token(project=PROJECT)
    monkeypatch.setenv("ORCHESTRATOR_TOKEN", token)
    monkeypatch.setenv("ORCHESTRATOR_PROJECT", "not-a-project")
    with pytest.raises(SettingsError, match="VLAB/PROJECT"):
        Client.from_settings()
    monkeypatch.setenv("ORCHESTRATOR_PROJECT", PROJECT)
    with Client.from_settings() as configured:
        assert configured.project == PROJECT
        assert isinstance(configured.list(), list)
        assert token not in repr(configured)


# ------------------------------------------------- transports that misbehave on purpose
class DropFirstStream(httpx.BaseTransport):
    """The first event stream breaks after `after_events` whole events and half of the next."""

    def __init__(self, after_events: int):
        self.inner = httpx.HTTPTransport()
        self.after_events = after_events
        self.last_event_ids: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.headers.get("accept") != "text/event-stream":
            return response
        self.last_event_ids.append(request.headers.get("last-event-id"))
        if len(self.last_event_ids) > 1:
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CutStream(response.stream, self.after_events),
            request=request,
        )

    def close(self) -> None:
        self.inner.close()


class _CutStream(httpx.SyncByteStream):
    def __init__(self, inner: Any, events: int):
        self.inner, self.events = inner, events

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.inner:
            buffer += chunk
            whole = buffer.split(b"\n\n")
            if len(whole) > self.events + 1:  # the events to keep, and part of the next one
                yield b"\n\n".join(whole[: self.events]) + b"\n\n" + whole[self.events][:12]
                raise httpx.ReadError("connection dropped (test)")
        yield buffer

    def close(self) -> None:
        self.inner.close()


class LoseFirstPostAnswer(httpx.BaseTransport):
    """The server handles the first POST, then the connection drops before its answer."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.idempotency_keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST":
            self.idempotency_keys.append(request.headers.get("idempotency-key"))
            if len(self.idempotency_keys) == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection dropped (test)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class UnavailableOnce(httpx.BaseTransport):
    """Answers 503 (as a proxy would) to the first request, and to every one after a reset."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls = 0
        self.failed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if not self.failed:
            self.failed = True
            return httpx.Response(503, text="<html>busy</html>", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


# ------------------------------------------------------------------ the CLI, remotely
def test_the_cli_talks_to_the_server_when_orchestrator_url_is_set(server: Server, tmp_path: Path):
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "ORCHESTRATOR_URL": server.url,
        "ORCHESTRATOR_PROJECT": PROJECT,
        "ORCHESTRATOR_TOKEN": server.issuer.token(project=PROJECT),
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "local-store"),
        "PYTHONPATH": str(repo),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    path = tmp_path / "remote.yaml"
    path.write_text(yaml.safe_dump(spec("cli-remote", points=3)))
    ran = cli("run", str(path), "--json")
    assert ran.returncode == 0, ran.stderr
    final = json.loads(ran.stdout.strip().splitlines()[-1])
    assert final["state"] == "succeeded" and final["project"] == PROJECT
    listed = json.loads(cli("list", "--json").stdout)
    assert final["id"] in [c["id"] for c in listed]
    # nothing went to the local store: the server has it
    assert not (tmp_path / "local-store" / "orchestrator.db").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**spec("bad"), "steps": {"sq": {"run": "nope:f"}}}))
    refused = cli("submit", str(bad))
    assert refused.returncode == 2 and "steps.sq.run" in refused.stderr
    assert "Traceback" not in refused.stderr
