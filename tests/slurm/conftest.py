"""A real single-node SLURM behind a real sshd on loopback (deploy/local-slurm/up).

The tests skip with a reason on a machine without it (not root, nothing set up), and fail
when CI=true: there they must run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import ClusterSettings
from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.conftest import fast_engine
from tests.slurm_env import SKIP_REASON, slurm_exports

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slurm_env() -> dict[str, str]:
    exports = slurm_exports(REPO)
    if exports is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the local SLURM: {SKIP_REASON}")
        pytest.skip(SKIP_REASON)
    return exports


def cluster_settings(env: dict[str, str], **slurm: Any) -> ClusterSettings:
    """Settings for the local SLURM; workers run this interpreter and call back on loopback."""
    return ClusterSettings.model_validate(
        {
            "kind": "slurm",
            "ssh": {
                "host": env["ORCHESTRATOR_CLUSTER__SSH__HOST"],
                "port": int(env["ORCHESTRATOR_CLUSTER__SSH__PORT"]),
                "username": env["ORCHESTRATOR_CLUSTER__SSH__USERNAME"],
                "key_file": env["ORCHESTRATOR_CLUSTER__SSH__KEY_FILE"],
                "known_hosts": env["ORCHESTRATOR_CLUSTER__SSH__KNOWN_HOSTS"],
                "reconnect_attempts": 2,
                "reconnect_backoff": 0.2,
            },
            "slurm": {
                "partition": env["ORCHESTRATOR_CLUSTER__SLURM__PARTITION"],
                "work_dir": env["ORCHESTRATOR_CLUSTER__SLURM__WORK_DIR"],
                "python": sys.executable,
                "scheduler_host": "127.0.0.1",
                "contact_address": "127.0.0.1",
                "memory": "1GiB",
                "maximum_jobs": 2,
                "poll_interval": 1.0,
                "dashboard_address": None,
                **slurm,
            },
        }
    )


def cli_env(env: dict[str, str], data_dir: Path, results: Path) -> dict[str, str]:
    """Environment for an `orchestrator` subprocess on the local SLURM."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    out.update({k: v for k, v in env.items() if k.startswith(("ORCHESTRATOR_", "SLURM_"))})
    out.update(
        ORCHESTRATOR_DATA_DIR=str(data_dir),
        ORCHESTRATOR_RESULTS_URL=str(results),
        ORCHESTRATOR_CLUSTER__SLURM__PYTHON=sys.executable,
        ORCHESTRATOR_CLUSTER__SLURM__SCHEDULER_HOST="127.0.0.1",
        ORCHESTRATOR_CLUSTER__SLURM__CONTACT_ADDRESS="127.0.0.1",
        ORCHESTRATOR_CLUSTER__SLURM__MEMORY="1GiB",
        ORCHESTRATOR_CLUSTER__SLURM__MAXIMUM_JOBS="1",
        ORCHESTRATOR_CLUSTER__SLURM__POLL_INTERVAL="1",
        ORCHESTRATOR_CLUSTER__SLURM__DASHBOARD_ADDRESS="",
        ORCHESTRATOR_ENGINE__BATCH_POLL_INTERVAL="0.5",
        PYTHONPATH=str(REPO),
    )
    return out


@pytest.fixture(scope="session")
def slurm(slurm_env: dict[str, str]) -> Iterator[SlurmCompute]:
    """One SLURM-backed compute for the session: workers are SLURM jobs."""
    with SlurmCompute(cluster_settings(slurm_env)) as compute:
        yield compute


@pytest.fixture
def slurm_service(tmp_path: Path) -> Iterator[Service]:
    engine = fast_engine()
    engine.batch_poll_interval = 0.5
    svc = Service(
        Settings(data_dir=tmp_path / "data", results_url=str(tmp_path / "results"), engine=engine)
    )
    yield svc
    svc.close()
