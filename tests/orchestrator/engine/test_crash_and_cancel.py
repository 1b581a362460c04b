"""Real processes: a runner killed with SIGKILL then resumed, and cancellation from another
process, through the `orchestrator` CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.helpers import CLI, start_cli, wait_for

REPO = Path(__file__).resolve().parents[3]


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ORCHESTRATOR_DATA_DIR": str(data_dir),
            "ORCHESTRATOR_CLUSTER__LOCAL__N_WORKERS": "2",
            "ORCHESTRATOR_ENGINE__CONTROL_INTERVAL": "0.1",
            "ORCHESTRATOR_ENGINE__LEASE_SECONDS": "5",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def _write_spec(tmp_path: Path, points: int, seconds: float, chunk: int | None = None) -> Path:
    spec: dict = {
        "name": "slow",
        "parameters": {"x": {"range": [0, points]}},
        "steps": {
            "work": {
                "run": "tests.workloads:slow_counted",
                "foreach": True,
                "with": {"seconds": seconds, "counter": str(tmp_path / "ran.txt")},
            }
        },
        "results": str(tmp_path / "results"),
    }
    if chunk is not None:
        spec["steps"]["work"]["chunk"] = chunk
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _succeeded(service: Service, cid: str) -> set[int]:
    return {
        t.point
        for t in service.store.list_tasks(cid, state="succeeded", limit=10**6)
        if t.point is not None
    }


@pytest.mark.parametrize("chunk", [None, 6], ids=["one-point-per-task", "chunks-of-6"])
def test_sigkill_mid_campaign_then_resume(tmp_path: Path, chunk: int | None):
    env = _env(tmp_path / "data")
    spec = _write_spec(tmp_path, points=40, seconds=0.25, chunk=chunk)
    service = Service(Settings(data_dir=tmp_path / "data"))
    runner = start_cli(["run", str(spec)], env, tmp_path)
    try:
        cid = wait_for(lambda: [c["id"] for c in service.list_campaigns()], 60, "the campaign")[0]
        wait_for(lambda: len(_succeeded(service, cid)) >= 8, 60, "some finished points")
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the runner and its Dask workers, nothing else
        runner.wait()
    done_before = _succeeded(service, cid)
    assert 8 <= len(done_before) < 40
    assert service.status(cid)["state"] == "running"

    resumed = subprocess.run(
        [*CLI, "resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    status = service.status(cid)
    assert status["state"] == "succeeded"
    assert status["counts"]["succeeded"] == 40
    runs = Counter(
        int(line.split()[0]) for line in (tmp_path / "ran.txt").read_text().split("\n") if line
    )
    assert set(runs) == set(range(40))
    # finished before the crash (durably): never run again
    assert all(runs[x] == 1 for x in done_before), {x: runs[x] for x in done_before}
    tasks = {t.point: t for t in service.store.list_tasks(cid, limit=100)}
    assert all(tasks[x].attempt == 1 for x in done_before)
    events = [e for e in service.events(cid, limit=100000) if e.kind == "campaign"]
    assert [e.state for e in events][-1] == "succeeded"


def test_cancel_from_another_process(tmp_path: Path):
    env = _env(tmp_path / "data")
    spec = _write_spec(tmp_path, points=60, seconds=0.3)
    service = Service(Settings(data_dir=tmp_path / "data"))
    runner = start_cli(["run", str(spec), "--json"], env, tmp_path)
    try:
        cid = wait_for(lambda: [c["id"] for c in service.list_campaigns()], 60, "the campaign")[0]
        wait_for(lambda: len(_succeeded(service, cid)) >= 3, 60, "some finished points")
        cancel = subprocess.run(
            [*CLI, "cancel", cid], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert cancel.returncode == 0, cancel.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert runner.returncode == 1, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["id"] == cid and final["state"] == "cancelled"
    assert final["counts"]["succeeded"] < 60
    assert final["counts"]["succeeded"] + final["counts"]["cancelled"] == 60
    # nothing runs after the runner is gone
    ran = (tmp_path / "ran.txt").read_text().count("\n")
    time.sleep(1.0)
    assert (tmp_path / "ran.txt").read_text().count("\n") == ran


@pytest.mark.parametrize("scope", ["point", "step"])
def test_cancel_a_point_or_a_step_while_running(tmp_path: Path, scope: str):
    from orchestrator.spec import load_file

    env = _env(tmp_path / "data")
    # a second per point: the cancel (a new process) lands well before the campaign's end,
    # even on a busy machine where starting it takes seconds
    spec_path = _write_spec(tmp_path, points=20, seconds=1.0)
    document = yaml.safe_load(spec_path.read_text())
    document["steps"]["after"] = {
        "run": "tests.workloads:scaled_work",
        "foreach": True,
        "needs": ["work"],
    }
    spec_path.write_text(yaml.safe_dump(document))
    assert load_file(spec_path)  # valid
    service = Service(Settings(data_dir=tmp_path / "data"))
    runner = start_cli(["run", str(spec_path), "--json"], env, tmp_path)
    try:
        cid = wait_for(lambda: [c["id"] for c in service.list_campaigns()], 60, "the campaign")[0]
        wait_for(lambda: len(_succeeded(service, cid)) >= 2, 60, "some finished points")
        if scope == "point":
            args = ["cancel", cid, "--point", "19"]
        else:
            args = ["cancel", cid, "--step", "after"]
        assert subprocess.run(CLI + args, env=env, cwd=tmp_path, timeout=60).returncode == 0
        out, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert runner.returncode == 1, err
    final = json.loads(out.strip().splitlines()[-1])
    work = final["steps"]["work"]
    after = final["steps"]["after"]
    if scope == "point":
        assert work["succeeded"] == 19 and work["cancelled"] == 1
        assert after["succeeded"] == 19 and after["cancelled"] == 1
    else:
        assert work["succeeded"] == 20  # the cancelled step's upstream still finishes
        assert after["cancelled"] + after["succeeded"] == 20 and after["cancelled"] >= 1
