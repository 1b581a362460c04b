"""The README's main job and the CLI's everyday commands, as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "orchestrator.cli"]


def _cli(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        {
            "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
            "ORCHESTRATOR_CLUSTER__LOCAL__N_WORKERS": "2",
            "ORCHESTRATOR_ENGINE__RETRY_BACKOFF": "0.05",
            # `demo --results` writes beside the default ./results: a root the service allows
            "ORCHESTRATOR_RESULTS_ROOTS": json.dumps([str(tmp_path)]),
            "PYTHONPATH": str(REPO),
        }
    )
    return subprocess.run(
        [*CLI, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
    )


def test_demo_runs_the_neuron_campaign_and_reports_its_plot(tmp_path: Path):
    done = _cli(tmp_path, "demo", "--results", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "f–I curves:" in done.stdout
    plot = Path(done.stdout.split("f–I curves:")[1].split()[0])
    table = Path(done.stdout.split("table:")[1].split()[0])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = table.read_text().strip().splitlines()
    assert rows[0].startswith("amplitude_nA") and len(rows) == 1 + 21 * 3
    status = json.loads(_cli(tmp_path, "list", "--json").stdout)[0]
    assert status["name"] == "fi-curve" and status["state"] == "succeeded"
    assert status["counts"]["succeeded"] == 2 * 63 + 1
    manifest = (plot.parent.parent / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 2 * 63 + 1


def test_run_failure_logs_events_and_restart(tmp_path: Path):
    spec = {
        "name": "flaky",
        "parameters": {"x": [1, 2, 3]},
        "steps": {
            "check": {
                "run": "tests.workloads:fail_on",
                "foreach": True,
                "with": {"bad": 2},
                "retries": 1,
            },
            "after": {"run": "tests.workloads:total_of_checks", "needs": ["check"]},
        },
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "flaky.yaml"
    path.write_text(yaml.safe_dump(spec))
    ran = _cli(tmp_path, "run", str(path), "--json")
    assert ran.returncode == 1
    status = json.loads(ran.stdout.strip().splitlines()[-1])
    assert status["state"] == "failed"
    assert status["steps"]["check"]["failed"] == 1 and status["steps"]["after"]["pending"] == 1
    cid = status["id"]

    logs = _cli(tmp_path, "logs", cid, "check/1")
    assert logs.returncode == 0
    assert "ValueError: x=2 is bad" in logs.stdout and "attempt 2" in logs.stdout

    events = _cli(tmp_path, "events", cid, "--json")
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["kind"] == "campaign" and lines[-1]["state"] == "failed"
    followed = _cli(tmp_path, "events", cid, "--follow", timeout=30)  # ends: campaign finished
    assert followed.returncode == 0 and "failed" in followed.stdout.splitlines()[-1]

    # restart re-runs the failed task (still failing: the input is bad) and nothing else
    again = _cli(tmp_path, "restart", cid)
    assert again.returncode == 1
    assert "1 task(s) back to pending" in again.stderr
    tasks = json.loads(_cli(tmp_path, "status", cid, "--json").stdout)
    assert tasks["steps"]["check"] == {
        "total": 3,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }


def test_submit_then_resume_runs_it(tmp_path: Path):
    spec = {
        "name": "later",
        "parameters": {"x": {"range": [0, 5]}},
        "steps": {"sq": {"run": "tests.workloads:square", "foreach": True}},
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "later.yaml"
    path.write_text(yaml.safe_dump(spec))
    submitted = _cli(tmp_path, "submit", str(path))
    assert submitted.returncode == 0
    cid = submitted.stdout.strip()
    assert json.loads(_cli(tmp_path, "status", cid, "--json").stdout)["state"] == "accepted"
    resumed = _cli(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(_cli(tmp_path, "status", cid, "--json").stdout)
    assert final["state"] == "succeeded" and final["counts"]["succeeded"] == 5
    results = [json.loads(line) for line in _cli(tmp_path, "results", cid).stdout.splitlines()]
    assert sorted(r["result"] for r in results) == [0, 1, 4, 9, 16]
    assert _cli(tmp_path, "resume").stderr.strip() == "nothing to resume"
