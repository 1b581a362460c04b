"""Faults on the real local SLURM: an unreachable head node, a dropped SSH connection, a
worker job killed from outside, and a crash between `sbatch` and recording its answer."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from cluster import open_compute
from cluster.slurm.batch import BatchJob
from cluster.slurm.compute import SlurmCompute
from orchestrator.engine.batch import BatchSteps, JobRef
from orchestrator.engine.slots import Slot
from orchestrator.results import ResultsLocation
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.fixtures.slurm import REPO, cluster_settings
from tests.helpers import spec_doc, wait_for

pytestmark = pytest.mark.slurm


def test_unreachable_head_node_fails_the_campaign_not_the_service(
    slurm_env: dict[str, str], slurm_service: Service
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    bad = cluster_settings(slurm_env)
    bad.ssh = bad.ssh.model_copy(update={"port": closed_port, "reconnect_attempts": 0})
    runner = Runner(slurm_service, lambda _project: open_compute(bad), poll_interval=0.1)
    runner.start()
    try:
        doc = spec_doc("unreachable", {"s": {"run": "tests.workloads:noop"}})
        cid = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
        runner.wake()
        status = wait_for(
            lambda: s if (s := slurm_service.status(cid))["state"] == "failed" else None
        )
        assert (
            "cannot reach" in status["message"] and f"127.0.0.1:{closed_port}" in status["message"]
        )
        assert runner._thread is not None and runner._thread.is_alive()
    finally:
        runner.close()


def test_dropped_ssh_connection_mid_campaign(
    slurm: SlurmCompute, slurm_service: Service, tmp_path: Path
) -> None:
    counter = tmp_path / "ran.txt"
    script = (
        f"echo {{{{ x }}}} >> {counter}\nsleep 3\n"
        "echo '{\"x\": {{ x }}}' > {{ output_dir }}/result.json"
    )
    doc = spec_doc("drop", {"sim": {"batch": {"script": script}, "foreach": True}}, x=[0, 1, 2])
    cid = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
    outcome: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("state", slurm_service.run(cid, slurm))
    )
    thread.start()
    wait_for(lambda: counter.exists() and len(counter.read_text().split()) == 3)
    slurm.transport.drop_connection()  # the engine's next poll reconnects
    thread.join(120)
    assert outcome.get("state") == "succeeded"
    assert Counter(int(x) for x in counter.read_text().split()) == Counter({0: 1, 1: 1, 2: 1})


def test_a_worker_job_killed_from_outside_is_replaced(slurm_env: dict[str, str]) -> None:
    """One poll for all worker jobs notices the job ended; the cluster submits another."""
    with SlurmCompute(cluster_settings(slurm_env, minimum_jobs=1)) as compute:
        compute.client.wait_for_workers(1, timeout=90)
        jobs = [job.job_id for job in compute.cluster.workers.values() if job.job_id]
        assert len(jobs) == 1
        compute.transport.run_sync(["scancel", *jobs])
        replaced = wait_for(
            lambda: [
                job.job_id
                for job in compute.cluster.workers.values()
                if job.job_id and job.job_id not in jobs
            ],
            60,
        )
        assert replaced
        assert compute.client.submit(pow, 2, 5).result(timeout=90) == 32


def test_a_submission_whose_answer_was_lost_is_found_by_name(
    slurm: SlurmCompute, tmp_path: Path
) -> None:
    """The crash came after sbatch ran and before its answer was recorded: only the intent
    `name#index=` is in the store. Re-attaching finds the job by its name."""
    assert slurm.batch is not None
    name = f"orch-test-{time.time_ns() % 10**8}"
    steps = BatchSteps(
        slurm.batch, slurm.client, "c0ffee00", ResultsLocation(str(tmp_path)), 65536, 0.2
    )
    output = steps.output_dir("sim", 1)
    script = f"mkdir -p {output} && echo '{{\"found\": true}}' > {output}/result.json"
    ids = slurm.batch.submit(BatchJob(name, ["true", script], ["/tmp", output]))
    slurm.batch.forget(ids)  # as if this process had never seen sbatch's answer
    slot = Slot("sim", 1, state="queued", attempt=1, job_ref=str(JobRef(name, 1, None)))
    assert steps.attach(slot)
    assert slot.future == ids[1] and slot.job_ref == str(JobRef(name, 1, ids[1]))
    ended = wait_for(lambda: steps.poll(time.time())[1], 60)
    ((done, outcome),) = ended
    assert done is slot and outcome.ok and outcome.value == {"found": True}
