"""`orchestrator run` stops within seconds on SIGTERM or Ctrl-C, and the campaign stays
resumable: real processes and real signals (the run in its own session, so the test signals
only that process group), then `orchestrator resume` finishes it without re-running
anything that had finished."""

from __future__ import annotations

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
EXIT_WITHIN = 5.0


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("signum", "target"),
    [(signal.SIGTERM, "process"), (signal.SIGTERM, "group"), (signal.SIGINT, "group")],
    ids=["sigterm", "sigterm-group", "ctrl-c"],
)
def test_run_stops_within_seconds_and_stays_resumable(
    tmp_path: Path, signum: signal.Signals, target: str
):
    data = tmp_path / "data"
    env = dict(os.environ)
    env.update(
        {
            "ORCHESTRATOR_DATA_DIR": str(data),
            "ORCHESTRATOR_CLUSTER__LOCAL__N_WORKERS": "2",
            "ORCHESTRATOR_ENGINE__CONTROL_INTERVAL": "0.1",
            "ORCHESTRATOR_ENGINE__LEASE_SECONDS": "5",
            "PYTHONPATH": str(REPO),
        }
    )
    spec = {
        "name": "long",
        "parameters": {"x": {"range": [0, 60]}},
        "steps": {
            "work": {
                "run": "tests.workloads:slow_counted",
                "foreach": True,
                "with": {"seconds": 0.3, "counter": str(tmp_path / "ran.txt")},
            }
        },
        "results": str(tmp_path / "results"),
    }
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(spec))
    service = Service(Settings(data_dir=data))
    run = start_cli(["run", str(tmp_path / "long.yaml")], env, tmp_path)
    try:
        cid = wait_for(lambda: [c["id"] for c in service.list_campaigns()], 60, "the campaign")[0]
        wait_for(lambda: service.status(cid)["counts"].get("succeeded", 0) >= 4, 120, "progress")
        sent = time.monotonic()
        if target == "group":
            os.killpg(run.pid, signum)
        else:
            run.send_signal(signum)
        run.wait(timeout=60)
        took = time.monotonic() - sent
        assert took < EXIT_WITHIN, f"run took {took:.1f}s to exit: {_tail(run)}"
        wait_for(lambda: _gone(run.pid), EXIT_WITHIN, "its Dask workers to exit")
    finally:
        if run.poll() is None or not _gone(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, _tail(run)
    done_before = {t.point for t in service.store.list_tasks(cid, state="succeeded", limit=1000)}
    assert service.status(cid)["state"] == "running"

    resumed = subprocess.run(
        [*CLI, "resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert service.status(cid)["counts"]["succeeded"] == 60
    runs = Counter(int(line.split()[0]) for line in (tmp_path / "ran.txt").read_text().splitlines())
    assert set(runs) == set(range(60))
    assert all(runs[x] == 1 for x in done_before), {x: runs[x] for x in done_before}


def _tail(process: subprocess.Popen[str]) -> str:
    """The end of an exited process's stderr, to say why a check failed."""
    return process.stderr.read()[-3000:] if process.stderr else ""
