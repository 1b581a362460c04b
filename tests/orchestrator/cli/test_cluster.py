"""`orchestrator cluster config|create|status|env|delete` (default back end: the local SLURM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no orchestrator.toml
    return CliRunner()


def test_config_prints_a_parallelcluster_configuration(runner: CliRunner):
    done = runner.invoke(cli, ["cluster", "config", "--project", "lab/p1", "--tier", "large"])
    assert done.exit_code == 0, done.output
    config = yaml.safe_load(done.output)
    assert config["Scheduling"]["Scheduler"] == "slurm"
    lustre = [s for s in config["SharedStorage"] if s["StorageType"] == "FsxLustre"]
    assert len(lustre) == 1
    plain = runner.invoke(cli, ["cluster", "config", "--project", "lab/p1", "--no-lustre"])
    assert "FsxLustre" not in plain.output
    bad = runner.invoke(cli, ["cluster", "config", "--project", "lab/p1", "--tier", "huge"])
    assert bad.exit_code == 1 and "unknown tier 'huge'" in bad.output


def test_create_status_delete_on_the_local_slurm(runner: CliRunner, monkeypatch):
    prefix = "ORCHESTRATOR_CLUSTER__SSH__"
    for key, value in {
        "HOST": "127.0.0.1",
        "PORT": "2222",
        "USERNAME": "root",
        "KEY_FILE": "/s/id_ed25519",
        "KNOWN_HOSTS": "/s/known_hosts",
    }.items():  # what `eval "$(deploy/local-slurm/up)"` exports
        monkeypatch.setenv(prefix + key, value)
    created = runner.invoke(cli, ["cluster", "create", "--project", "lab/p1"])
    assert created.exit_code == 0, created.output
    record = json.loads(created.output)
    assert record["state"] == "ready" and record["connection"]["port"] == 2222
    status = runner.invoke(cli, ["cluster", "status", "--project", "lab/p1"])
    assert json.loads(status.output)["name"] == record["name"]
    env = runner.invoke(cli, ["cluster", "env", "--project", "lab/p1"])
    assert env.exit_code == 0, env.output
    exports = env.output.splitlines()
    assert "export ORCHESTRATOR_CLUSTER__KIND=slurm" in exports
    assert "export ORCHESTRATOR_CLUSTER__SSH__PORT=2222" in exports
    assert "export ORCHESTRATOR_CLUSTER__SSH__KEY_FILE=/s/id_ed25519" in exports
    assert not any("FSX" in line for line in exports)  # the local SLURM has no Lustre
    deleted = runner.invoke(cli, ["cluster", "delete", "--project", "lab/p1"])
    assert json.loads(deleted.output)["state"] == "deleted"
    missing = runner.invoke(cli, ["cluster", "status", "--project", "lab/none"])
    assert missing.exit_code == 1 and "no cluster for lab/none" in missing.output


def test_no_local_slurm_is_a_clear_failure(runner: CliRunner, monkeypatch):
    for key in ("HOST", "PORT", "USERNAME", "KEY_FILE", "KNOWN_HOSTS"):
        monkeypatch.delenv(f"ORCHESTRATOR_CLUSTER__SSH__{key}", raising=False)
    done = runner.invoke(cli, ["cluster", "create", "--project", "lab/p1"])
    assert done.exit_code == 1
    assert json.loads(done.output)["reason"].startswith("no local SLURM")
