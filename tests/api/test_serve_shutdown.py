"""`orchestrator serve` stops within seconds on SIGTERM, whatever it is doing, and what it
was running stays resumable.

Real processes and real signals: the server runs in its own session (so the test signals
only that process group), has run campaigns, has a live event stream open and a campaign
running when it gets a plain SIGTERM, or a TERM to its whole process group (as systemd and
ECS send it). `orchestrator resume` then finishes the campaign without re-running anything
that had finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.helpers import CLI, start_cli, wait_for
from tests.orchestrator.results.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
EXIT_WITHIN = 5.0  # seconds: well inside the 30 s ECS (and systemd) give before SIGKILL


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ORCHESTRATOR_DATA_DIR": str(data_dir),
            "ORCHESTRATOR_CLUSTER__LOCAL__N_WORKERS": "2",
            "ORCHESTRATOR_ENGINE__CONTROL_INTERVAL": "0.1",
            "ORCHESTRATOR_ENGINE__LEASE_SECONDS": "5",
            "ORCHESTRATOR_API__POLL_INTERVAL": "0.2",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def _spec(tmp_path: Path, name: str, points: int, seconds: float) -> dict[str, Any]:
    return {
        "name": name,
        "parameters": {"x": {"range": [0, points]}},
        "steps": {
            "work": {
                "run": "tests.workloads:slow_counted",
                "foreach": True,
                "with": {"seconds": seconds, "counter": str(tmp_path / f"{name}.txt")},
            }
        },
        "results": str(tmp_path / "results"),
    }


def _succeeded(service: Service, cid: str) -> set[int]:
    return {
        t.point
        for t in service.store.list_tasks(cid, state="succeeded", limit=10**6)
        if t.point is not None
    }


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _stream(url: str, headers: dict[str, str], seen: list[str]) -> None:
    try:
        with httpx.stream("GET", url, headers=headers, timeout=None) as response:
            for line in response.iter_lines():
                seen.append(line)
    except httpx.HTTPError:
        pass  # the server went away: what this test does


@pytest.mark.parametrize("target", ["process", "group"])
def test_sigterm_stops_serve_within_seconds(tmp_path: Path, target: str):
    data = tmp_path / "data"
    env = _env(data)
    port = free_port()
    token = subprocess.run(
        [*CLI, "token", "--project", "local/default"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}/v1/projects/local/default/campaigns"
    server = start_cli(["serve", "--port", str(port)], env, tmp_path)
    service = Service(Settings(data_dir=data))
    try:
        wait_for(lambda: _up(port), 60, "the server")
        first = httpx.post(base, json=_spec(tmp_path, "first", 4, 0.05), headers=headers)
        first.raise_for_status()
        wait_for(
            lambda: service.status(first.json()["id"])["state"] == "succeeded", 120, "a campaign"
        )
        made = httpx.post(base, json=_spec(tmp_path, "long", 60, 0.3), headers=headers)
        made.raise_for_status()
        cid = made.json()["id"]
        wait_for(lambda: len(_succeeded(service, cid)) >= 4, 120, "some finished points")
        seen: list[str] = []
        stream_headers = {**headers, "Accept": "text/event-stream"}
        reader = threading.Thread(
            target=_stream, args=(f"{base}/{cid}/events", stream_headers, seen), daemon=True
        )
        reader.start()
        wait_for(lambda: any(line.startswith("data:") for line in seen), 30, "the event stream")

        sent = time.monotonic()
        if target == "group":
            os.killpg(server.pid, signal.SIGTERM)
        else:
            server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        took = time.monotonic() - sent
        assert took < EXIT_WITHIN, f"serve took {took:.1f}s to exit on SIGTERM: {_tail(server)}"
        wait_for(lambda: _gone(server.pid), EXIT_WITHIN, "its Dask workers to exit")
    finally:
        if server.poll() is None or not _gone(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    done_before = _succeeded(service, cid)
    assert len(done_before) < 60
    assert service.status(cid)["state"] == "running"

    resumed = subprocess.run(
        [*CLI, "resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    status = service.status(cid)
    assert (status["state"], status["counts"]["succeeded"]) == ("succeeded", 60)
    runs = Counter(
        int(line.split()[0]) for line in (tmp_path / "long.txt").read_text().splitlines()
    )
    assert set(runs) == set(range(60))
    assert all(runs[x] == 1 for x in done_before), {x: runs[x] for x in done_before}


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(process: subprocess.Popen[str]) -> str:
    """The end of an exited process's stderr, to say why a check failed."""
    return process.stderr.read()[-3000:] if process.stderr else ""
