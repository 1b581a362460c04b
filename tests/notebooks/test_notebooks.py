"""The notebooks in notebooks/, executed in a real Jupyter kernel (nbclient), offline."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from api.issuer import DevIssuer
from api.main import create_app
from cluster import LocalSettings
from orchestrator.settings import ClusterSettings, Settings
from tests.api.test_client import Server
from tests.conftest import fast_engine
from tests.fixtures.api import served

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real uvicorn server whose project's Dask dashboard is on (the notebook links it)."""
    root = tmp_path_factory.mktemp("notebook-server")
    settings = Settings(
        data_dir=root / "data",
        results_url=str(root / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=LocalSettings(n_workers=1, dashboard_address="127.0.0.1:0")),
    )
    with served(create_app(settings)) as url:
        yield Server(url, DevIssuer(settings.data_dir))


def _execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        book, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return book


def _text(book: nbformat.NotebookNode) -> str:
    out = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            out.append(output.get("text", ""))
            out += [str(v) for k, v in output.get("data", {}).items() if k == "text/plain"]
    return "\n".join(out)


@pytest.mark.demo
def test_steering_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ORCHESTRATOR_RESULTS_URL", str(tmp_path / "results"))
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER__LOCAL__N_WORKERS", "2")
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER__LOCAL__DASHBOARD_ADDRESS", "127.0.0.1:0")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = _execute("steering.ipynb", tmp_path)
    text = _text(book)
    assert "rheobase between 0.000 and 0.040 nA" in text, text
    assert "14 points; rheobase 0.0300 nA (coarse grid said ≤ 0.040)" in text, text


def test_monitoring_notebook(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = server.client()
    spec = {
        "name": "to-watch",
        "parameters": {"x": [1, 2, 3]},
        "steps": {"check": {"run": "tests.workloads:fail_on", "foreach": True, "with": {"bad": 2}}},
    }
    campaign = client.submit(spec)
    client.wait(campaign["id"], timeout=60)
    monkeypatch.setenv("ORCHESTRATOR_URL", server.url)
    monkeypatch.setenv("ORCHESTRATOR_TOKEN", server.issuer.token(project="lab/client"))
    monkeypatch.setenv("ORCHESTRATOR_PROJECT", "lab/client")
    monkeypatch.setenv(
        "PYTHONPATH", str(NOTEBOOKS.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    text = _text(_execute("monitoring.ipynb", tmp_path))
    assert campaign["id"] in text and "to-watch" in text
    assert "task check:1: failed (attempt 1)" in text and "x=2 is bad" in text, text
    assert "http://127.0.0.1:" in text  # the dashboard link


@pytest.mark.slurm
def test_ring_network_notebook(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steering the MPI ring on the local SLURM: the embedded default, pointed at it."""
    for key, value in slurm_env.items():
        if key.startswith(("ORCHESTRATOR_CLUSTER__", "SLURM_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ORCHESTRATOR_RESULTS_URL", str(tmp_path / "results"))
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER__SLURM__PYTHON", sys.executable)
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER__SLURM__SCHEDULER_HOST", "127.0.0.1")
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER__SLURM__CONTACT_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER__SLURM__DASHBOARD_ADDRESS", "")
    monkeypatch.setenv("ORCHESTRATOR_ENGINE__BATCH_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv(
        "PYTHONPATH", str(NOTEBOOKS.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    text = _text(_execute("ring_network.ipynb", tmp_path))
    assert "activity goes round the ring between 1.0 and 1.5 nS" in text, text
    assert re.search(r"9 points; propagation from 1\.[0-5]\d nS", text), text
