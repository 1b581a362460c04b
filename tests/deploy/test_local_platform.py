"""deploy/local-platform/up and down, end to end: the script starts PostgreSQL, moto's S3
server and a front door (the local SLURM is the test session's, so the script finds it
running and leaves it alone); campaigns of two projects, submitted over HTTP with tokens of
`orchestrator token`, each run on SLURM through its project's own instance, with results in
S3, each instance on the store as its project's own PostgreSQL role; `down` then stops
exactly what `up` started."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from cluster.instances.base import instance_slug
from tests.fixtures.slurm import REPO
from tests.helpers import wait_for
from tests.slurm_env import STATE_VAR

pytestmark = [pytest.mark.slurm, pytest.mark.postgres, pytest.mark.aws]

SPEC = {
    "name": "two-projects",
    "parameters": {"x": [1, 2, 3]},
    "steps": {"s": {"run": "tests.workloads:square", "foreach": True}},
}


def _kg_activities(state: Path, project: str, campaign_id: str) -> list[str]:
    """The task activities of `campaign_id` in the knowledge graph of `project`'s instance
    (its embedded graph, read with `orchestrator kg query` beside the running instance)."""
    data = state / "instances" / instance_slug(project) / "data"
    sparql = (
        "SELECT DISTINCT ?task WHERE { ?task a prov:Activity ; wf:step ?step . "
        f'FILTER(CONTAINS(STR(?task), "{campaign_id}")) }}'
    )
    found = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "kg", "query", "--json", sparql],
        env={**os.environ, "ORCHESTRATOR_DATA_DIR": str(data), "ORCHESTRATOR_CONFIG": "/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    return [row["task"] for row in json.loads(found.stdout)]


def _exports(text: str) -> dict[str, str]:
    return {
        key: value
        for key, _, value in (
            line.removeprefix("export ").partition("=")
            for line in text.splitlines()
            if line.startswith("export ")
        )
    }


def _script_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "AWS_"))}
    env.update(
        ORCHESTRATOR_PYTHON=sys.executable,
        LOCAL_PLATFORM_SLURM_STATE=os.environ.get(STATE_VAR, ""),
        ORCHESTRATOR_API__POLL_INTERVAL="0.2",
        ORCHESTRATOR_CONFIG="/nonexistent",
    )
    return env


@pytest.fixture
def platform(tmp_path: Path, slurm_env: dict[str, str]) -> Iterator[tuple[Path, dict[str, str]]]:
    state = tmp_path / "platform"
    # PostgreSQL runs as its own user: its folder is outside pytest's private one
    pg_state = Path(tempfile.mkdtemp(prefix="orchestrator-platform-pg-"))
    pg_state.chmod(0o755)
    env = {
        **_script_env(state),
        "LOCAL_PLATFORM_SLURM_STATE": slurm_env[STATE_VAR],
        "LOCAL_PLATFORM_PG_STATE": str(pg_state),
    }
    up = subprocess.run(
        [str(REPO / "deploy/local-platform/up"), str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield state, _exports(up.stdout)
    finally:
        down = subprocess.run(
            [str(REPO / "deploy/local-platform/down"), str(state)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        shutil.rmtree(pg_state, ignore_errors=True)
        assert down.returncode == 0, down.stderr[-3000:]


def _pids(state: Path) -> dict[str, int]:
    """What up started and down must stop: its own pid files and the instances'."""
    found = {path.stem: int(path.read_text()) for path in (state / "run").glob("*.pid")}
    for entry in (state / "instances").glob("*.json"):
        recorded = json.loads(entry.read_text())
        found[recorded["project"]] = int(recorded["pid"])
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_two_projects_run_on_slurm_through_their_instances(
    platform: tuple[Path, dict[str, str]], slurm_env: dict[str, str]
) -> None:
    state, exports = platform
    url = exports["ORCHESTRATOR_URL"]
    cli_env = {**_script_env(state), **exports, "PYTHONPATH": str(REPO)}
    ended: dict[str, dict[str, Any]] = {}
    headers: dict[str, dict[str, str]] = {}
    for project in ("lab/p1", "lab/p2"):
        token = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "token", "--project", project],
            env=cli_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers[project] = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{url}/v1/projects/{project}/campaigns", json=SPEC, headers=headers[project]
        )
        assert created.status_code == 201, created.text
        ended[project] = created.json()
    for project, campaign in ended.items():
        route = f"{url}/v1/projects/{project}/campaigns/{campaign['id']}"
        ended[project] = wait_for(
            lambda route=route, project=project: (
                (s := httpx.get(route, headers=headers[project]).json())["state"]
                in ("succeeded", "failed")
                and s
            ),
            timeout=300,
            what=f"the campaign of {project} ended",
        )
        assert ended[project]["state"] == "succeeded", ended[project]
        events = httpx.get(f"{route}/events", headers=headers[project]).json()["items"]
        assert [e["state"] for e in events if e["kind"] == "instance"] == [
            "provisioning",
            "starting",
            "ready",
        ]
        info = httpx.get(f"{url}/v1/projects/{project}/cluster", headers=headers[project]).json()
        assert (info["instance"], info["cluster"], info["kind"]) == ("running", "ready", "slurm")
    # one instance per project, each its own process
    pids = _pids(state)
    assert {"front-door", "moto", "lab/p1", "lab/p2"} <= set(pids)
    assert pids["lab/p1"] != pids["lab/p2"]
    for project in ("lab/p1", "lab/p2"):  # each opens the store as its project's own role
        environ = Path(f"/proc/{pids[project]}/environ").read_bytes().split(b"\0")
        db_url = next(v for v in environ if v.startswith(b"ORCHESTRATOR_DB_URL=")).decode()
        assert "://orch_p_" in db_url, project
    # results in S3 (moto), under each campaign's folder
    s3 = boto3.client(
        "s3",
        endpoint_url=exports["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=exports["AWS_REGION"],
    )
    for status in ended.values():
        bucket, _, prefix = status["results"].removeprefix("s3://").partition("/")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/manifest/")["Contents"]
        entries = [
            json.loads(line)
            for item in listed
            for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().splitlines()
        ]
        assert len(entries) == 3, entries  # one per task, each point's result stored
    # provenance: each instance registers its own project's tasks in its own knowledge graph
    # (the embedded one, in its data folder), and nothing of the other project's
    for project, other_project in (("lab/p1", "lab/p2"), ("lab/p2", "lab/p1")):
        own, others = ended[project]["id"], ended[other_project]["id"]
        tasks = wait_for(
            lambda project=project, own=own: (
                len(found := _kg_activities(state, project, own)) >= 3 and found
            ),
            timeout=120,
            what=f"the tasks of {project} registered",
        )
        assert all(own in task for task in tasks)
        assert _kg_activities(state, project, others) == []
    # a project's token sees nothing of another's campaign
    other = f"{url}/v1/projects/lab/p1/campaigns/{ended['lab/p1']['id']}"
    assert httpx.get(other, headers=headers["lab/p2"]).status_code == 404

    subprocess.run(
        [str(REPO / "deploy/local-platform/down"), str(state)],
        env=_script_env(state),
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert not [name for name, pid in pids.items() if _alive(pid)]
    # the session's SLURM, found running, is left alone
    slurmctld = int(Path(slurm_env[STATE_VAR], "run", "slurmctld.pid").read_text())
    assert _alive(slurmctld)
