"""Campaigns on the real local SLURM, reached over SSH: Python steps on SLURM-backed Dask
workers, and batch steps as job arrays."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.fixtures.slurm import REPO
from tests.helpers import spec_doc, task_states, wait_for

pytestmark = pytest.mark.slurm


def submit(service: Service, doc: dict[str, Any]) -> str:
    """Submitted from the repository: workers (SLURM jobs) import tests.workloads from it."""
    return service.submit(parse_document(doc), import_paths=[str(REPO)])


def run(service: Service, compute: SlurmCompute, doc: dict[str, Any]) -> tuple[str, str]:
    campaign_id = submit(service, doc)
    return campaign_id, service.run(campaign_id, compute)


def _tasks(service: Service, campaign_id: str, step: str) -> dict[int | None, Any]:
    return {t.point: t for t in service.store.list_tasks(campaign_id, step=step, limit=10**6)}


def test_python_steps_run_on_slurm_workers(slurm: SlurmCompute, slurm_service: Service) -> None:
    doc = spec_doc(
        "on-slurm",
        {"where": {"run": "tests.workloads:slurm_job_id", "foreach": True}},
        x=[1, 2, 3, 4],
    )
    campaign_id, state = run(slurm_service, slurm, doc)
    assert state == "succeeded"
    results = [t.result for t in _tasks(slurm_service, campaign_id, "where").values()]
    assert sorted(r["x"] for r in results) == [1, 2, 3, 4]
    assert all(r["job"] and r["job"].isdigit() for r in results), results


def test_a_step_larger_than_any_worker_fails_clearly(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    doc = spec_doc(
        "too-big",
        {"big": {"run": "tests.workloads:square", "foreach": True, "resources": {"cores": 4}}},
        x=[1],
    )
    campaign_id, state = run(slurm_service, slurm, doc)
    assert state == "failed"
    message = slurm_service.status(campaign_id)["message"]
    assert "steps.big.resources" in message and "4 cores" in message


def _squeue(slurm: SlurmCompute, job: str) -> str:
    return slurm.transport.run_sync(["squeue", "-h", "-j", job.split("_")[0]], check=False).stdout


def test_swept_batch_step_is_one_job_array_running_srun(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    script = (
        "srun -n 2 hostname > hosts.txt\n"
        'echo "stdout of {{ x }}"\n'
        "echo '{\"x\": {{ x }}, \"ranks\": '$(wc -l < hosts.txt)'}' > {{ output_dir }}/result.json"
    )
    doc = spec_doc(
        "array",
        {
            "sim": {
                "batch": {"script": script, "ntasks": 2, "array_parallelism": 2},
                "foreach": True,
            },
            "total": {"run": "tests.workloads:total_x", "needs": ["sim"]},
        },
        x=[1, 2, 3],
    )
    campaign_id, state = run(slurm_service, slurm, doc)
    assert state == "succeeded", slurm_service.status(campaign_id)
    tasks = _tasks(slurm_service, campaign_id, "sim")
    assert [tasks[p].result for p in range(3)] == [{"x": x, "ranks": 2} for x in (1, 2, 3)]
    arrays = {t.job_id.split("=")[1].split("_")[0] for t in tasks.values()}
    assert len(arrays) == 1  # one sbatch for the whole sweep
    assert _tasks(slurm_service, campaign_id, "total")[None].result == 6
    logs = slurm_service.logs(campaign_id, "sim/1")
    assert "stdout of 2" in logs and "slurm:" in logs


def test_bad_partition_fails_the_task_with_slurms_message(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    doc = spec_doc(
        "bad-partition",
        {"sim": {"batch": {"script": "true", "partition": "nope"}, "foreach": True}},
        x=[1, 2],
    )
    campaign_id, state = run(slurm_service, slurm, doc)
    assert state == "failed"
    errors = [t.error for t in _tasks(slurm_service, campaign_id, "sim").values()]
    assert all("invalid partition" in (e or "").lower() for e in errors), errors
    # the service goes on: the next campaign runs
    _, state = run(slurm_service, slurm, spec_doc("after", {"s": {"run": "tests.workloads:noop"}}))
    assert state == "succeeded"


def test_a_job_scancelled_from_outside_is_retried(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    script = (
        'if [ "{{ attempt }}" = 1 ]; then sleep 120; fi\n'
        "echo '{\"attempt\": {{ attempt }}}' > {{ output_dir }}/result.json"
    )
    doc = spec_doc("scancelled", {"sim": {"batch": {"script": script}, "retries": 1}})
    campaign_id = submit(slurm_service, doc)
    outcome: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("state", slurm_service.run(campaign_id, slurm))
    )
    thread.start()
    running = wait_for(
        lambda: [
            t
            for t in _tasks(slurm_service, campaign_id, "sim").values()
            if t.state == "running" and t.job_id and t.job_id.endswith(tuple("0123456789"))
        ]
    )
    job = running[0].job_id.split("=")[1]
    slurm.transport.run_sync(["scancel", job])
    thread.join(120)
    assert outcome.get("state") == "succeeded"
    task = _tasks(slurm_service, campaign_id, "sim")[None]
    assert task.attempt == 2 and task.result == {"attempt": 2}
    events = slurm_service.events(campaign_id)
    assert any("cancelled" in (e.message or "").lower() for e in events), events


def test_cancel_stops_the_campaigns_jobs(slurm: SlurmCompute, slurm_service: Service) -> None:
    doc = spec_doc(
        "cancel-me",
        {"sim": {"batch": {"script": "sleep 120"}, "foreach": True}},
        x=[1, 2],
    )
    campaign_id = submit(slurm_service, doc)
    outcome: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("state", slurm_service.run(campaign_id, slurm))
    )
    thread.start()
    tasks = wait_for(
        lambda: (
            [t for t in _tasks(slurm_service, campaign_id, "sim").values() if t.state == "running"]
            if len(task_states(slurm_service, campaign_id, "sim")) == 2
            else None
        )
    )
    job = tasks[0].job_id.split("=")[1]
    slurm_service.cancel(campaign_id)
    thread.join(60)
    assert outcome.get("state") == "cancelled"
    assert wait_for(lambda: _squeue(slurm, job).strip() == "", timeout=20)
