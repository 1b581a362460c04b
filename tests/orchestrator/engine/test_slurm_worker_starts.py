"""Worker jobs that keep failing at start end the campaign, on the real local SLURM.

`orchestrator run` with a wrong `ORCHESTRATOR_CLUSTER__SLURM__PYTHON`: every worker job
fails before its worker starts; after `worker_start_failures` of them in a row the
campaign ends `failed`, its reason (and its event) holding the tail of the job's stderr,
instead of replacing worker jobs forever.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.fixtures.slurm import cli_env
from tests.helpers import CLI

pytestmark = pytest.mark.slurm


def test_a_wrong_worker_python_fails_the_campaign_with_its_stderr(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(slurm_env, tmp_path / "data", tmp_path / "results")
    env["ORCHESTRATOR_CLUSTER__SLURM__PYTHON"] = "/opt/no-such-python/bin/python3"
    env["ORCHESTRATOR_CLUSTER__SLURM__WORKER_START_FAILURES"] = "2"
    env["ORCHESTRATOR_CLUSTER__SLURM__MAXIMUM_JOBS"] = "1"
    spec = {
        "name": "no-workers",
        "parameters": {"x": [1, 2]},
        "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    ran = subprocess.run(
        [*CLI, "run", str(path), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 1, ran.stderr
    status = json.loads(ran.stdout.strip().splitlines()[-1])
    assert status["state"] == "failed"
    service = Service(Settings(data_dir=tmp_path / "data"))
    record = service.campaign(status["id"])
    assert "worker jobs in a row failed before their Dask worker started" in (record.message or "")
    assert "/opt/no-such-python/bin/python3" in (record.message or "")  # from the job's stderr
    [failed] = [
        e for e in service.events(status["id"]) if e.kind == "campaign" and e.state == "failed"
    ]
    assert "no-such-python" in (failed.message or "")
