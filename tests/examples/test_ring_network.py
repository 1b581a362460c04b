"""examples/ring_network: a NEURON network on MPI ranks started by `srun`, as batch steps on the
real local SLURM (marker `slurm`), and its analysis and plots (no SLURM)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.slurm.compute import SlurmCompute
from examples.ring_network import plots, ring
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.fixtures.slurm import REPO, cli_env
from tests.helpers import CLI, spec_doc, wait_for

EXAMPLE = REPO / "examples" / "ring_network"
RING = {"python": sys.executable, "ring_py": str(EXAMPLE / "ring.py"), "cells": 12}


def _script(extra: str = "", tstop: float = 150) -> str:
    return (
        "srun --mpi=pmix --kill-on-bad-exit=1 {{ python }} {{ ring_py }} --weight {{ weight }} "
        f"--delay {{{{ delay }}}} --cells {{{{ cells }}}} --tstop {tstop} --output . {extra}\n"
        'echo "rank files: $(cat spikes-rank*.txt | wc -l) gathered: $(wc -l < spikes.txt)"\n'
        "ls spikes-rank*.txt\n"
    )


def _run(service: Service, compute: SlurmCompute, doc: dict[str, Any]) -> tuple[str, str]:
    campaign_id = service.submit(parse_document(doc), import_paths=[str(REPO)])
    return campaign_id, service.run(campaign_id, compute)


def _tasks(service: Service, campaign_id: str, step: str) -> dict[int | None, Any]:
    return {t.point: t for t in service.store.list_tasks(campaign_id, step=step, limit=10**6)}


@pytest.mark.slurm
def test_one_and_two_ranks_give_the_same_spikes(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    steps = {
        name: {"batch": {"script": _script(), "ntasks": n}, "foreach": True, "with": RING}
        for name, n in (("one", 1), ("two", 2))
    }
    doc = spec_doc("ring-ranks", steps, weight=[0.0008, 0.002], delay=[2.0])
    campaign_id, state = _run(slurm_service, slurm, doc)
    assert state == "succeeded", slurm_service.status(campaign_id)
    one, two = (_tasks(slurm_service, campaign_id, s) for s in ("one", "two"))
    for point in (0, 1):
        a, b = one[point].result, two[point].result
        assert (a["ranks"], b["ranks"]) == (1, 2)
        spikes_a, spikes_b = sorted(map(tuple, a["spikes"])), sorted(map(tuple, b["spikes"]))
        assert [g for _, g in spikes_a] == [g for _, g in spikes_b]
        pairs = zip(spikes_a, spikes_b, strict=True)
        assert all(math.isclose(s, t, abs_tol=1e-9) for (s, _), (t, _) in pairs)
        assert a["round_trip_ms"] == pytest.approx(b["round_trip_ms"], abs=1e-9)
        # every rank wrote its own spikes; rank 0 gathered all of them
        logs = slurm_service.logs(campaign_id, f"two/{point}")
        n = b["spike_count"]
        assert f"rank files: {n} gathered: {n}" in logs, logs
        assert "spikes-rank0.txt" in logs and "spikes-rank1.txt" in logs, logs
    assert one[0].result["spike_count"] == 1 and not one[0].result["propagates"]  # too weak
    assert two[1].result["propagates"] and two[1].result["cells_reached"] == 12


@pytest.mark.slurm
def test_a_rank_that_dies_fails_the_task_with_its_stderr(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    sim = {
        "batch": {"script": _script("--exit-rank 1", tstop=10**6), "ntasks": 2},
        "foreach": True,
        "with": RING,
    }
    doc = spec_doc("ring-dies", {"sim": sim}, weight=[0.002], delay=[2.0])
    campaign_id, state = _run(slurm_service, slurm, doc)
    assert state == "failed"
    task = _tasks(slurm_service, campaign_id, "sim")[0]
    assert task.state == "failed"
    error = task.error or ""
    assert "FAILED" in error and "SLURM job" in error, error
    assert "rank 1: exiting with code 3 on purpose" in error, error
    assert "task 1: Exited with exit code 3" in error, error
    logs = slurm_service.logs(campaign_id, "sim/0")
    assert "rank 1: exiting with code 3 on purpose" in logs, logs


def _ranks(tag: str) -> list[int]:
    """Pids of this machine's processes that are ranks of the job tagged `tag` (python running
    ring.py with the tag in its arguments; srun's own process left out)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not a process
            continue
        if tag.encode() in argv and Path(argv[0].decode()).name.startswith("python"):
            found.append(int(proc.name))
    return found


@pytest.mark.slurm
def test_cancel_ends_every_rank(slurm: SlurmCompute, slurm_service: Service) -> None:
    tag = f"ring-cancel-{uuid.uuid4().hex}"  # in the ranks' command lines, and nowhere else
    sim = {
        "batch": {"script": _script(f"--tag {tag}", tstop=10**7), "ntasks": 2},
        "foreach": True,
        "with": RING,
    }
    doc = spec_doc("ring-cancel", {"sim": sim}, weight=[0.002], delay=[2.0])
    campaign_id = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
    outcome: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("state", slurm_service.run(campaign_id, slurm))
    )
    thread.start()
    try:
        wait_for(lambda: len(_ranks(tag)) == 2, timeout=90, what="both ranks to run")
        wait_for(
            lambda: _tasks(slurm_service, campaign_id, "sim")[0].state == "running",
            what="the task to be running",
        )
    finally:
        slurm_service.cancel(campaign_id)
        thread.join(60)
    assert outcome.get("state") == "cancelled"
    assert _tasks(slurm_service, campaign_id, "sim")[0].state == "cancelled"
    wait_for(lambda: not _ranks(tag), timeout=30, what=f"no process of {tag} left")


def test_summary_and_plots(tmp_path: Path) -> None:
    spikes = [[1.5, 0], [6.0, 1], [10.5, 2], [15.0, 0]]
    summary = ring.summarise(spikes, n_cells=3, tstop=100.0, stim_ms=1.0)
    assert summary["spike_count"] == 4 and summary["propagates"]
    assert summary["round_trip_ms"] == pytest.approx(13.5)
    assert summary["mean_rate_hz"] == pytest.approx(4 / 3 / 0.1)
    silent = ring.summarise([[1.5, 0]], n_cells=3, tstop=100.0, stim_ms=1.0)
    assert silent["round_trip_ms"] is None and not silent["propagates"]

    def row(weight: float, delay: float, s: list[list[float]]) -> dict[str, Any]:
        r = {"weight": weight, "delay": delay, "cells": 3, "ranks": 2, "spikes": s}
        return {**r, **ring.summarise(s, 3, 100.0, 1.0)}

    results = [row(0.001, 1.0, [[1.5, 0]]), row(0.002, 1.0, spikes), None]

    class Ctx:
        output_dir = tmp_path

    out = plots.plot(results, Ctx())
    assert out["points"] == 2 and out["propagating"] == 1
    assert out["lowest_propagating_weight"] == {"1.0": 0.002}
    assert all(Path(f).stat().st_size > 1000 for f in out["figures"])


@pytest.mark.slurm
def test_the_example_runs_with_the_cli(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """The README's command: the whole sweep as one job array, then the plots."""
    env = cli_env(slurm_env, tmp_path / "data", tmp_path / "results")
    env["MPLBACKEND"] = "Agg"
    # the worker jobs import this checkout (not whatever the interpreter has installed)
    env["ORCHESTRATOR_CLUSTER__SLURM__PROLOGUE"] = json.dumps([f"export PYTHONPATH={REPO}"])
    spec = EXAMPLE / "ring.yaml"
    proc = subprocess.run(
        [*CLI, "run", str(spec), "--json", "--results", str(tmp_path / "results")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-3000:]
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status["state"] == "succeeded"
    (folder,) = (tmp_path / "results").iterdir()
    assert {p.name for p in (folder / "plot").iterdir()} >= {"rate.png", "rasters.png"}
    doc = yaml.safe_load(spec.read_text())
    assert doc["steps"]["simulate"]["batch"]["ntasks"] == 2
