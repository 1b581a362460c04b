"""The three roles of `serve` over one shared store (SQLite here), without SLURM: the
instance answers only for its project and checks tokens against the front door's JWKS
(fetched over HTTP); the front door runs nothing itself, picks up unfinished campaigns when
it starts, and fails a campaign whose cluster cannot be provisioned with the reason. The
store is SQLite, and PostgreSQL for the stages (they must fit its columns). The
provisioner is the real `local` back end, here with no local SLURM to hand out (its own
failure, nothing faked). tests/api/test_platform.py runs campaigns through instances."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.issuer import DEV_ISSUER, DevIssuer
from api.main import create_app
from cluster import LocalSettings
from orchestrator.errors import SettingsError
from orchestrator.platform.settings import PlatformSettings
from orchestrator.settings import AuthSettings, ClusterSettings, Settings
from tests.conftest import fast_engine
from tests.fixtures.api import bearer, served
from tests.helpers import spec_doc, wait_for

SPEC = spec_doc("roles", {"s": {"run": "tests.workloads:square", "foreach": True}}, x=[1, 2])


@pytest.fixture
def no_local_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local provisioner finds no SLURM settings in the environment."""
    for name in ("HOST", "PORT", "USERNAME", "KEY_FILE", "KNOWN_HOSTS"):
        monkeypatch.delenv(f"ORCHESTRATOR_CLUSTER__SSH__{name}", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", "/nonexistent")


def front_door_settings(tmp_path: Path, db_url: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path / "front-door",
        db_url=db_url or f"sqlite:///{tmp_path / 'shared.db'}",
        results_url=str(tmp_path / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=LocalSettings(n_workers=1, dashboard_address=None)),
        platform=PlatformSettings(url="http://127.0.0.1:9", interval=0.2),
    )


@pytest.fixture
def front_door_url(tmp_path: Path, no_local_slurm: None) -> Iterator[str]:
    """A front door that starts no instance (routes and its JWKS only)."""
    with served(
        create_app(front_door_settings(tmp_path), role="front-door", run_campaigns=False)
    ) as url:
        yield url


def test_instance_answers_only_for_its_project(tmp_path: Path, front_door_url: str) -> None:
    settings = front_door_settings(tmp_path)
    instance_settings = settings.model_copy(
        update={
            "data_dir": tmp_path / "instance",
            "auth": AuthSettings(
                jwks_url=f"{front_door_url}/dev-issuer/jwks.json", issuer=DEV_ISSUER
            ),
        }
    )
    app = create_app(instance_settings, role="instance", project="lab/p1", run_campaigns=False)
    # a member of both projects: the front door answers for both, the instance for its own
    both = bearer(
        DevIssuer(settings.data_dir).token(project="lab/p1", extra_groups=["/proj/lab/p2/member"])
    )
    with TestClient(app) as instance:
        assert instance.get("/v1/projects/lab/p1/campaigns", headers=both).status_code == 200
        refused = instance.get("/v1/projects/lab/p2/campaigns", headers=both)
        assert refused.status_code == 404, refused.text
        assert instance.get("/v1/projects/lab/p2/cluster", headers=both).status_code == 404
        assert instance.get("/dev-issuer/jwks.json").json() == {"keys": []}  # signs nothing
        assert not (tmp_path / "instance" / "dev-issuer-key.pem").exists()
        info = instance.get("/v1/projects/lab/p1/cluster", headers=both).json()
        assert (info["instance"], info["cluster"]) == ("running", "none")
    for project in ("lab/p1", "lab/p2"):
        answer = httpx.get(f"{front_door_url}/v1/projects/{project}/campaigns", headers=both)
        assert answer.status_code == 200
    info = httpx.get(f"{front_door_url}/v1/projects/lab/p1/cluster", headers=both).json()
    assert (info["instance"], info["cluster"], info["started"]) == ("stopped", "none", False)


def test_instance_role_needs_a_project_and_an_external_issuer(tmp_path: Path) -> None:
    settings = front_door_settings(tmp_path)
    with pytest.raises(SettingsError, match="--project VLAB/PROJECT"):
        create_app(settings, role="instance")
    with pytest.raises(SettingsError, match="ORCHESTRATOR_AUTH__JWKS_URL"):
        create_app(settings, role="instance", project="lab/p1")
    with pytest.raises(SettingsError, match="--project is for --role instance"):
        create_app(settings, role="front-door", project="lab/p1")


def test_front_door_picks_up_work_on_start_and_fails_it_when_no_cluster_comes(
    tmp_path: Path, no_local_slurm: None, db_url: str
) -> None:
    settings = front_door_settings(tmp_path, db_url)
    token = bearer(DevIssuer(settings.data_dir).token(project="lab/p1"))
    # submitted while no front door looked for work (e.g. just before a restart)
    with TestClient(create_app(settings, role="front-door", run_campaigns=False)) as idle:
        created = idle.post("/v1/projects/lab/p1/campaigns", json=SPEC, headers=token)
        assert created.status_code == 201, created.text
        campaign = f"/v1/projects/lab/p1/campaigns/{created.json()['id']}"
        assert idle.get(campaign, headers=token).json()["state"] == "accepted"
    with TestClient(create_app(settings, role="front-door")) as front_door:
        status = wait_for(
            lambda: (
                (s := front_door.get(campaign, headers=token).json())["state"] == "failed" and s
            ),
            timeout=30,
            what="the campaign failed",
        )
        assert "provisioning the cluster of lab/p1 failed" in status["message"]
        assert "no local SLURM" in status["message"]  # the provisioner's own reason
        events = front_door.get(f"{campaign}/events", headers=token).json()["items"]
        stages = [(e["kind"], e.get("state")) for e in events]
        assert ("instance", "provisioning") in stages
        assert ("instance", "starting") not in stages
        said = [e["message"] for e in events if e["kind"] == "instance"]
        assert said == ["provisioning cluster: tier small"]
        assert stages[-1] == ("campaign", "failed")
        info = wait_for(
            lambda: (
                (i := front_door.get("/v1/projects/lab/p1/cluster", headers=token).json())[
                    "instance"
                ]
                == "stopped"
                and i
            ),
            timeout=10,
            what="the bring-up ended",
        )
        assert info["cluster"] == "failed"


def test_serve_names_what_a_role_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from api.cli import serve

    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", "/nonexistent")
    monkeypatch.delenv("ORCHESTRATOR_AUTH__JWKS_URL", raising=False)
    result = CliRunner().invoke(serve, ["--role", "instance", "--project", "lab/p1"])
    assert result.exit_code == 1 and "ORCHESTRATOR_AUTH__JWKS_URL" in result.output
    result = CliRunner().invoke(serve, ["--role", "instance"])
    assert result.exit_code == 1 and "--project VLAB/PROJECT" in result.output
    assert CliRunner().invoke(serve, ["--role", "router"]).exit_code == 2
