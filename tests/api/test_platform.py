"""The platform on one machine: a front door (uvicorn, in this process) over a shared
SQLite store, the real `local` provisioner handing out the local SLURM, and real local
instances (`orchestrator serve --role instance` subprocesses) running each project's
campaigns on that SLURM. Nothing is faked."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.issuer import DevIssuer
from api.main import create_app
from cluster.provisioner import ProvisionerSettings
from cluster.provisioner.settings import LocalBackendSettings
from orchestrator.platform.open import open_instances
from orchestrator.platform.settings import PlatformSettings
from orchestrator.settings import Settings
from tests.conftest import fast_engine
from tests.fixtures.api import bearer, served
from tests.fixtures.slurm import REPO
from tests.helpers import spec_doc, wait_for

pytestmark = pytest.mark.slurm

SPEC = spec_doc("platform", {"s": {"run": "tests.workloads:square", "foreach": True}}, x=[1, 2])
IDLE_TIMEOUT = 8.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def instance_environment(slurm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What `deploy/local-platform/up` leaves in the front door's environment, inherited by
    its instances: the SLURM workers' settings (they run this interpreter and this code)."""
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", "/nonexistent")
    for name, value in {
        **{k: v for k, v in slurm_env.items() if k.startswith("ORCHESTRATOR_CLUSTER__SLURM__")},
        "ORCHESTRATOR_CLUSTER__SLURM__PYTHON": sys.executable,
        "ORCHESTRATOR_CLUSTER__SLURM__MEMORY": "1GiB",
        "ORCHESTRATOR_CLUSTER__SLURM__MAXIMUM_JOBS": "1",
        "ORCHESTRATOR_CLUSTER__SLURM__POLL_INTERVAL": "1",
        "ORCHESTRATOR_CLUSTER__SLURM__DASHBOARD_ADDRESS": "",
        "ORCHESTRATOR_API__POLL_INTERVAL": "0.2",
        "ORCHESTRATOR_CLUSTER__SLURM__PROLOGUE": json.dumps([f"export PYTHONPATH={REPO}"]),
        "PYTHONPATH": str(REPO),
        **{k: v for k, v in slurm_env.items() if k.startswith("SLURM_")},
    }.items():
        monkeypatch.setenv(name, value)


def _get(url: str, headers: dict[str, str]) -> Any:
    answer = httpx.get(url, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _stages(url: str, headers: dict[str, str]) -> list[tuple[str, str | None]]:
    events = _get(f"{url}/events", headers)["items"]
    return [(e["kind"], e.get("state")) for e in events]


def test_campaigns_run_through_the_projects_instance_which_stops_when_idle(
    tmp_path: Path, slurm_env: dict[str, str], instance_environment: None
) -> None:
    port = _free_port()
    settings = Settings(
        data_dir=tmp_path / "front-door",
        db_url=f"sqlite:///{tmp_path / 'shared.db'}",
        results_url=str(tmp_path / "results"),
        engine=fast_engine(),
        provisioner=ProvisionerSettings(
            local=LocalBackendSettings(exports=slurm_env), idle_timeout=IDLE_TIMEOUT
        ),
        platform=PlatformSettings(url=f"http://127.0.0.1:{port}", interval=0.5, idle_interval=1.0),
    )
    issuer = DevIssuer(settings.data_dir)
    p1 = bearer(issuer.token(project="lab/p1"))
    p2 = bearer(issuer.token(project="lab/p2"))
    both = bearer(issuer.token(project="lab/p1", extra_groups=["/proj/lab/p2/member"]))
    try:
        with served(create_app(settings, role="front-door"), port=port) as front_door:
            _platform_flow(settings, front_door, p1, p2, both)
    finally:  # instances are the platform's: a front door leaves them running
        open_instances(settings).stop("lab/p1")


def _platform_flow(
    settings: Settings,
    front_door: str,
    p1: dict[str, str],
    p2: dict[str, str],
    both: dict[str, str],
) -> None:
    projects = f"{front_door}/v1/projects"
    cluster = f"{projects}/lab/p1/cluster"
    assert _get(cluster, p1)["instance"] == "stopped"

    def run_campaign() -> str:
        created = httpx.post(f"{projects}/lab/p1/campaigns", json=SPEC, headers=p1)
        assert created.status_code == 201, created.text
        campaign = f"{projects}/lab/p1/campaigns/{created.json()['id']}"
        status = wait_for(
            lambda: (s := _get(campaign, p1))["state"] in ("succeeded", "failed") and s,
            timeout=300,
            what="the campaign ended",
        )
        assert status["state"] == "succeeded", status
        stages = _stages(campaign, p1)
        order = [
            ("instance", "provisioning"),
            ("instance", "starting"),
            ("campaign", "running"),
            ("campaign", "succeeded"),
        ]
        assert [stage for stage in stages if stage in order] == order, stages
        # said once the instance answers, by when its runner may have taken the campaign
        assert ("instance", "ready") in stages[stages.index(order[1]) :], stages
        return campaign

    campaign = run_campaign()
    info = _get(cluster, p1)
    assert (info["instance"], info["cluster"], info["kind"]) == ("running", "ready", "slurm")
    assert info["started"] is True  # forwarded to the instance: its compute runs
    # another project's member sees nothing of it, through the front door
    assert httpx.get(campaign, headers=p2).status_code == 404
    assert httpx.get(f"{projects}/lab/p2/cluster", headers=p2).json()["instance"] == "stopped"
    # the instance itself refuses every other project, even to a member of both
    found = open_instances(settings).find("lab/p1")
    assert found is not None and found.url is not None
    instance = found.url
    assert httpx.get(f"{instance}/v1/projects/lab/p1/campaigns", headers=both).is_success
    assert httpx.get(f"{instance}/v1/projects/lab/p2/campaigns", headers=both).status_code == 404

    idle = wait_for(
        lambda: (i := _get(cluster, p1))["instance"] == "stopped" and i,
        timeout=IDLE_TIMEOUT + 60,
        what="the idle instance stopped",
    )
    assert idle["cluster"] == "none"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{instance}/healthz")

    run_campaign()  # new work brings it back
    assert _get(cluster, p1)["instance"] == "running"
