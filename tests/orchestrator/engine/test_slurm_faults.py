"""Faults on the real local SLURM while a campaign runs: slurmctld paused for 20 s, a worker
job cancelled from outside, the SSH connection cut while the head node refuses new ones for
20 s. Each campaign must end `succeeded` with every point's result and without running again
what had finished; the time from the fault's end to the next task finishing is printed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from tests.fixtures.slurm import cluster_settings
from tests.helpers import spec_doc, wait_for
from tests.orchestrator.engine.faults import (
    check_campaign,
    recovery,
    report,
    start,
    succeeded_now,
)
from tests.orchestrator.engine.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slurm

POINTS = 6


def _batch_doc(name: str, counter: Path, seconds: int = 3) -> dict[str, object]:
    script = (
        f"echo {{{{ x }}}} $SLURM_JOB_ID >> {counter}\nsleep {seconds}\n"
        "echo '{\"x\": {{ x }}}' > {{ output_dir }}/result.json"
    )
    step = {"batch": {"script": script, "array_parallelism": 2}, "foreach": True}
    return spec_doc(name, {"sim": step}, x={"range": [0, POINTS]})


def _first_finished(service: Service, cid: str) -> dict[tuple[str, int | None], int]:
    return wait_for(lambda: succeeded_now(service, cid), 180, "a first task to finish")


def test_slurmctld_paused_for_20_seconds(
    slurm_env: dict[str, str], slurm: SlurmCompute, slurm_service: Service, tmp_path: Path
) -> None:
    counter = tmp_path / "ran.txt"
    running = start(slurm_service, slurm, _batch_doc("ctld-pause", counter))
    pid = int((Path(slurm_env["ORCHESTRATOR_TEST_SLURM_STATE"]) / "run/slurmctld.pid").read_text())
    finished = _first_finished(slurm_service, running.campaign_id)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(20)
        finished = succeeded_now(slurm_service, running.campaign_id)
    finally:
        os.kill(pid, signal.SIGCONT)
    fault_end = time.time()
    assert running.join(300) == "succeeded"
    events = check_campaign(slurm_service, running.campaign_id, POINTS, counter, finished)
    assert all(e.attempt == 1 for e in events if e.kind == "task")  # no task was retried
    report("slurmctld paused 20 s", recovery(events, fault_end))


def test_ssh_cut_while_the_head_node_refuses_connections_for_20_seconds(
    slurm_env: dict[str, str], slurm_service: Service, tmp_path: Path
) -> None:
    """The service reaches sshd through a proxy of its own; the blip cuts the live connection
    and refuses new ones for 20 s (the shared sshd is not touched)."""
    proxy = TcpProxy(
        (
            slurm_env["ORCHESTRATOR_CLUSTER__SSH__HOST"],
            int(slurm_env["ORCHESTRATOR_CLUSTER__SSH__PORT"]),
        )
    )
    settings = cluster_settings(slurm_env)
    known = Path(slurm_env["ORCHESTRATOR_CLUSTER__SSH__KNOWN_HOSTS"]).read_text().split("\n")
    known_hosts = tmp_path / "known_hosts"  # the same host key, at the proxy's port
    known_hosts.write_text(
        "".join(f"[127.0.0.1]:{proxy.port} {line.split(maxsplit=1)[1]}\n" for line in known if line)
    )
    settings.ssh = settings.ssh.model_copy(
        update={
            "port": proxy.port,
            "known_hosts": str(known_hosts),
            "reconnect_attempts": 5,  # the defaults
            "reconnect_backoff": 0.5,
        }
    )
    counter = tmp_path / "ran.txt"
    try:
        with SlurmCompute(settings) as compute:
            running = start(slurm_service, compute, _batch_doc("ssh-blip", counter))
            finished = _first_finished(slurm_service, running.campaign_id)
            proxy.blip()
            fault_start = time.time()
            try:
                time.sleep(20)
                finished = succeeded_now(slurm_service, running.campaign_id)
            finally:
                proxy.restore()
            fault_end = time.time()
            assert running.join(300) == "succeeded"
    finally:
        proxy.close()
    events = check_campaign(slurm_service, running.campaign_id, POINTS, counter, finished)
    assert all(e.attempt == 1 for e in events if e.kind == "task")  # no task was retried
    seen = [e for e in events if e.kind == "task" and fault_start + 1 < e.time < fault_end]
    assert not [e for e in seen if e.state == "succeeded"], "a task finished with no SSH"
    report("SSH cut, new connections refused 20 s", recovery(events, fault_end))


def test_a_worker_job_cancelled_mid_campaign(
    slurm_env: dict[str, str], slurm_service: Service, tmp_path: Path
) -> None:
    """`scancel` of the worker job running a task: the cluster starts another job and the
    task runs again there; the tasks that had finished do not."""
    counter = tmp_path / "ran.txt"
    step = {
        "run": "tests.workloads:slow_counted",
        "foreach": True,
        "with": {"seconds": 4, "counter": str(counter)},
    }
    doc = spec_doc("worker-cancelled", {"sim": step}, x={"range": [0, POINTS]})
    with SlurmCompute(cluster_settings(slurm_env, maximum_jobs=1)) as compute:
        running = start(slurm_service, compute, doc)
        _first_finished(slurm_service, running.campaign_id)
        wait_for(
            lambda: [
                t
                for t in slurm_service.store.list_tasks(running.campaign_id, limit=100)
                if t.state == "running"
            ],
            120,
            "a running task",
        )
        finished = succeeded_now(slurm_service, running.campaign_id)
        jobs = [job.job_id for job in compute.cluster.workers.values() if job.job_id]
        assert jobs
        compute.transport.run_sync(["scancel", *jobs])
        fault_end = time.time()
        assert running.join(400) == "succeeded"
        assert [job.job_id for job in compute.cluster.workers.values() if job.job_id not in jobs]
    events = check_campaign(slurm_service, running.campaign_id, POINTS, counter, finished)
    tasks = [e for e in events if e.kind == "task"]
    cut = {e.point for e in tasks if e.state == "running" and e.time < fault_end}
    cut -= {e.point for e in tasks if e.state == "succeeded" and e.time < fault_end}
    assert cut, "no task was running on the cancelled job"
    # Dask ran it again on the new worker, within its attempt; the events say a job was lost
    assert all(e.attempt == 1 for e in tasks)
    lost = [e for e in events if e.kind == "worker" and e.state == "lost"]
    assert lost and len(lost) <= len(jobs), [e.message for e in lost]
    assert all("CANCELLED" in str(e.message) and "run again" in str(e.message) for e in lost)
    report("worker job cancelled", recovery(events, fault_end))
