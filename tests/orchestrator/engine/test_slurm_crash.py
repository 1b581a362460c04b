"""Real processes on the real local SLURM: the service killed with SIGKILL while batch jobs
run, then resumed (each point's job ran once); cancel from another process (no job left)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.fixtures.slurm import cli_env
from tests.helpers import CLI, start_cli, wait_for

pytestmark = pytest.mark.slurm


def _spec(tmp_path: Path, seconds: int, points: int = 4) -> Path:
    counter = tmp_path / "ran.txt"
    script = (
        f"echo {{{{ x }}}} $SLURM_JOB_ID >> {counter}\n"
        f"sleep {seconds}\n"
        "echo '{\"x\": {{ x }}}' > {{ output_dir }}/result.json"
    )
    spec = {
        "name": "slurm-crash",
        "parameters": {"x": {"range": [0, points]}},
        "steps": {"sim": {"batch": {"script": script}, "foreach": True}},
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _running_jobs(service: Service, cid: str) -> dict[int, str]:
    return {
        t.point: t.job_id.split("=", 1)[1]
        for t in service.store.list_tasks(cid, limit=1000)
        if t.point is not None and t.state == "running" and t.job_id and t.job_id[-1].isdigit()
    }


def test_sigkill_while_batch_jobs_run_then_resume(
    slurm_env: dict[str, str], slurm: SlurmCompute, tmp_path: Path
) -> None:
    env = cli_env(slurm_env, tmp_path / "data", tmp_path / "results")
    service = Service(Settings(data_dir=tmp_path / "data"))
    runner = start_cli(["run", str(_spec(tmp_path, seconds=8))], env, tmp_path)
    try:
        cid = wait_for(lambda: [c["id"] for c in service.list_campaigns()], 60, "the campaign")[0]
        before = wait_for(
            lambda: jobs if len(jobs := _running_jobs(service, cid)) == 4 else None,
            90,
            "4 running batch jobs",
        )
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the service; its SLURM jobs go on
        runner.wait()
    assert service.status(cid)["state"] == "running"
    resume_start = time.time()
    resumed = subprocess.run(
        [*CLI, "resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    status = service.status(cid)
    assert status["state"] == "succeeded", status
    runs = Counter(int(line.split()[0]) for line in (tmp_path / "ran.txt").read_text().splitlines())
    assert runs == Counter({0: 1, 1: 1, 2: 1, 3: 1})  # each point's job ran once
    tasks = {t.point: t for t in service.store.list_tasks(cid, limit=100)}
    assert {p: t.job_id.split("=", 1)[1] for p, t in tasks.items()} == before
    assert all(t.result == {"x": p} for p, t in tasks.items())
    messages = [e.message or "" for e in service.events(cid, limit=1000)]
    assert sum("re-attached to SLURM job" in m for m in messages) == 4
    assert all(t.attempt == 1 for t in tasks.values())  # re-attached, not run again
    done = [
        e.time
        for e in service.events(cid, limit=1000)
        if e.kind == "task" and e.state == "succeeded"
    ]
    recovery = min(t for t in done if t >= resume_start) - resume_start
    print(f"\nRECOVERY SIGKILL then resume: {recovery:.1f} s after `resume` started")
    service.close()


def test_cancel_from_another_process_leaves_no_job(
    slurm_env: dict[str, str], slurm: SlurmCompute, tmp_path: Path
) -> None:
    env = cli_env(slurm_env, tmp_path / "data", tmp_path / "results")
    service = Service(Settings(data_dir=tmp_path / "data"))
    runner = start_cli(
        ["run", str(_spec(tmp_path, seconds=120, points=3)), "--json"], env, tmp_path
    )
    try:
        cid = wait_for(lambda: [c["id"] for c in service.list_campaigns()], 60, "the campaign")[0]
        jobs = wait_for(
            lambda: j if len(j := _running_jobs(service, cid)) == 3 else None, 90, "jobs"
        )
        cancel = subprocess.run(
            [*CLI, "cancel", cid], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert cancel.returncode == 0, cancel.stderr
        _out, err = runner.communicate(timeout=90)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert runner.returncode == 1, err[-2000:]
    assert service.status(cid)["state"] == "cancelled"
    array = next(iter(jobs.values())).split("_")[0]

    def gone() -> bool:
        queue = slurm.transport.run_sync(["squeue", "-h", "-j", array], check=False).stdout
        return queue.strip() == ""

    assert wait_for(gone, 30, "the jobs to leave the queue")
    service.close()
