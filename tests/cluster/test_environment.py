"""The allow-list of environment variables for the scheduler, workers and task processes."""

from __future__ import annotations

import subprocess

import pytest

from cluster.environment import (
    EXTRA_NAMES_VARIABLE,
    allowed_environment,
    check_names,
    shell_filter,
    task_environment,
)
from cluster.settings import ClusterSettings

SERVICE = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/svc",
    "LC_ALL": "C.UTF-8",
    "ORCHESTRATOR_DB_URL": "postgresql://svc:pw@db/orch",
    "ORCHESTRATOR_KG__TOKEN": "token",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_ACCESS_KEY_ID": "AKIA",
    "AWS_REGION": "eu-north-1",
    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": "key",
    "MODULEPATH": "/opt/modules",
    "LMOD_CMD": "/opt/lmod",
}


def test_only_allowed_names_pass() -> None:
    env = allowed_environment(source=SERVICE)
    assert env == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/svc",
        "LC_ALL": "C.UTF-8",
        "AWS_REGION": "eu-north-1",
    }


def test_a_site_adds_names_and_prefixes() -> None:
    env = allowed_environment(["MODULEPATH", "LMOD_*"], {"X": "1"}, source=SERVICE)
    assert env["MODULEPATH"] == "/opt/modules" and env["LMOD_CMD"] == "/opt/lmod"
    assert env["X"] == "1" and env[EXTRA_NAMES_VARIABLE] == "MODULEPATH,LMOD_*"
    assert "ORCHESTRATOR_DB_URL" not in env


def test_task_environment_keeps_the_workers_extra_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXTRA_NAMES_VARIABLE, "MODULEPATH")
    monkeypatch.setenv("MODULEPATH", "/opt/modules")
    monkeypatch.setenv("ORCHESTRATOR_DB_URL", "postgresql://svc:pw@db/orch")
    env = task_environment(ORCHESTRATOR_POINT="3")
    assert env["MODULEPATH"] == "/opt/modules" and env["ORCHESTRATOR_POINT"] == "3"
    assert "ORCHESTRATOR_DB_URL" not in env


def test_the_job_script_filter_unsets_the_rest() -> None:
    script = f"{shell_filter(['MODULEPATH'])}; env"
    out = subprocess.run(
        ["bash", "-c", script], env=SERVICE, capture_output=True, text=True, check=True
    ).stdout
    names = {line.split("=", 1)[0] for line in out.splitlines() if "=" in line}
    assert {"PATH", "HOME", "MODULEPATH", "AWS_REGION"} <= names
    assert not names & {"ORCHESTRATOR_DB_URL", "AWS_SECRET_ACCESS_KEY", "LMOD_CMD"}


def test_bad_names_are_named() -> None:
    with pytest.raises(ValueError, match="'A B'"):
        check_names(["OK", "A B"])
    with pytest.raises(ValueError, match="worker_env"):
        ClusterSettings(worker_env=["$(rm)"])
