"""TLS between the service's Dask scheduler and its SLURM workers (the default): the workers'
key and certificates reach the cluster over SSH, readable by our user only; a client
without them cannot talk to the scheduler; they are removed when the compute closes."""

from __future__ import annotations

import os

import pytest
from distributed import Client

from cluster.slurm.compute import SlurmCompute
from tests.fixtures.slurm import cluster_settings

pytestmark = pytest.mark.slurm


def test_workers_talk_to_the_scheduler_over_tls(slurm: SlurmCompute) -> None:
    address = slurm.cluster.scheduler_address
    assert address.startswith("tls://")
    # a task makes the adaptive cluster start a worker job; it connects back over TLS
    job = slurm.client.submit(os.getenv, "SLURM_JOB_ID", pure=False).result(timeout=180)
    assert job and job.isdigit()
    workers = slurm.client.scheduler_info()["workers"]
    assert workers and all(address.startswith("tls://") for address in workers)

    assert slurm.tls_dir is not None
    listing = slurm.transport.run_sync(["stat", "-c", "%a %n", slurm.tls_dir + "/key.pem"])
    assert listing.stdout.split()[0] == "600"
    folder = slurm.transport.run_sync(["stat", "-c", "%a", slurm.tls_dir]).stdout.strip()
    assert folder == "700"

    plain = "tcp://" + address.split("://", 1)[1]
    with pytest.raises(OSError):  # no certificate, no scheduler
        Client(plain, timeout="3s")


def test_the_workers_certificates_are_removed_on_close(slurm_env: dict[str, str]) -> None:
    compute = SlurmCompute(cluster_settings(slurm_env, adaptive=False, minimum_jobs=0))
    folder = compute.tls_dir
    assert folder is not None
    assert compute.transport.run_sync(["test", "-d", folder], check=False).exit_status == 0
    transport = compute.transport
    compute.close()
    from cluster.ssh import SSHTransport

    check = SSHTransport(transport.settings)
    try:
        assert check.run_sync(["test", "-e", folder], check=False).exit_status == 1
    finally:
        check.close()
