"""What `orchestrator run` pays for before its first task: with the local compute and its
dashboard off, it imports neither Bokeh (the dashboard's Campaigns page), nor asyncssh
(SLURM), nor aiohttp (S3), nor Alembic (the store is at the newest revision already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
NOT_IMPORTED = ("bokeh", "asyncssh", "aiohttp", "alembic")
PROBE = """
import atexit, json, sys
watched = set(sys.argv[1].split(","))
atexit.register(lambda: print("MODULES " + json.dumps(sorted(
    {name.split(".")[0] for name in sys.modules} & watched)), file=sys.stderr))
sys.argv = ["orchestrator", *sys.argv[2:]]
from orchestrator.cli.main import main
main()
"""


def _cli(tmp_path: Path, *args: str, dashboard: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    local = {"n_workers": 1, "dashboard_address": dashboard}
    env.update(
        ORCHESTRATOR_DATA_DIR=str(tmp_path / "data"),
        ORCHESTRATOR_CONFIG=str(tmp_path / "none.toml"),
        ORCHESTRATOR_CLUSTER=json.dumps({"local": local}),
        PYTHONPATH=str(REPO),
    )
    argv = [sys.executable, "-c", PROBE, ",".join(NOT_IMPORTED), *args]
    return subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def _modules(done: subprocess.CompletedProcess[str]) -> list[str]:
    line = [x for x in done.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return list(json.loads(line.removeprefix("MODULES ")))


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: start-up\n"
        "parameters: {x: [1, 2, 3]}\n"
        "steps: {noop: {run: 'tests.workloads:noop', foreach: true}}\n"
        f"results: {tmp_path / 'results'}\n"
    )
    return spec


def test_run_without_dashboard_imports_only_what_it_uses(tmp_path: Path) -> None:
    assert _cli(tmp_path, "list", dashboard=None).returncode == 0  # the store is made
    done = _cli(tmp_path, "run", str(_spec(tmp_path)), "--json", dashboard=None)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["counts"]["succeeded"] == 3
    assert _modules(done) == []


def test_run_with_a_dashboard_serves_the_campaigns_page(tmp_path: Path) -> None:
    done = _cli(tmp_path, "run", str(_spec(tmp_path)), dashboard="127.0.0.1:0")
    assert done.returncode == 0, done.stderr
    assert "bokeh" in _modules(done)
    assert "campaigns: http://127.0.0.1:" in done.stderr
