"""On the real local SLURM: the scheduler runs in a process of its own without the service's
secrets, a task on a worker job cannot drive it with the worker's certificates, and the worker
job keeps only the allow-listed environment (plus the names the site adds)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.slurm.compute import SlurmCompute
from tests.cluster.scheduler.probes import SECRETS, probe_scheduler
from tests.fixtures.slurm import REPO, cluster_settings

pytestmark = pytest.mark.slurm


@pytest.fixture
def isolated_slurm(
    slurm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlurmCompute]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = cluster_settings(
        slurm_env,
        prologue=[
            f"export PYTHONPATH={REPO}",
            "export SITE_TOKEN=site-token-3456",  # not allowed: the filter drops it
            "export MODULEPATH=/opt/site/modules",  # allowed by the site (worker_env)
        ],
        maximum_jobs=1,
    )
    settings.worker_env = ["MODULEPATH"]
    with SlurmCompute(settings) as compute:
        yield compute


def test_a_task_on_a_slurm_worker_cannot_drive_the_scheduler(
    isolated_slurm: SlurmCompute,
) -> None:
    pid = isolated_slurm.scheduler_pid
    assert pid is not None and pid != os.getpid()
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    assert not [name for name, value in SECRETS.items() if value in environ]

    report = isolated_slurm.client.submit(probe_scheduler, pure=False).result(timeout=240)
    for attempt in ("run_function", "register_plugin", "client"):
        assert report[attempt].startswith("refused:"), f"{attempt}: {report[attempt]}"
    assert report["leaked"] == []
    assert "SITE_TOKEN" not in report["environ"]
    assert "MODULEPATH" in report["environ"] and "SLURM_JOB_ID" in report["environ"]
    # the service's own client still runs code where it must
    assert isolated_slurm.client.run_on_scheduler(os.getpid) == pid
    # tasks wait in the scheduler for worker jobs that start later: Dask's queuing, as set
    saturation = isolated_slurm.client.run_on_scheduler(
        lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
    )
    assert saturation == isolated_slurm.settings.slurm.worker_saturation == 1.1
