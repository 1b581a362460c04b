"""The embedded default's scheduler and workers run in processes of their own, without the
service's secrets, and only the service's client may run code on the scheduler: task code
holding a worker's own certificates is refused (real processes, real mutual TLS)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cluster import LocalCompute, LocalSettings
from orchestrator.service import Service
from tests.cluster.scheduler.probes import SECRETS, probe_scheduler
from tests.helpers import run, spec_doc

REPO = Path(__file__).resolve().parents[3]

SERVICE_ENV = {**SECRETS, "ORCHESTRATOR_AUTH__DEV_ISSUER_KEY": "-----BEGIN PRIVATE KEY-----x"}


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCompute]:
    """A LocalCompute started by a service whose environment holds (fake) secrets."""
    for name, value in SERVICE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SITE_MODULES", "/opt/site/modules")  # a name the site allows
    # the command step runs `python -m tests...` from its task folder: PYTHONPATH (allowed)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with LocalCompute(
        LocalSettings(n_workers=1, threads_per_worker=2, dashboard_address=None),
        worker_env=["SITE_*"],
    ) as local:
        yield local


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


def assert_refused(outcome: str, what: str) -> None:
    assert outcome.startswith("refused:"), f"{what} was not refused: {outcome}"


def test_scheduler_and_worker_processes_hold_no_secret(isolated: LocalCompute) -> None:
    assert isolated.scheduler_pid is not None and isolated.workers_pid is not None
    # the workers may sit in a PID namespace of their own: their processes, seen from here
    workers = psutil.Process(isolated.workers_pid).children(recursive=True)
    assert len(workers) >= 2  # the nanny and its worker process at least
    pids = [isolated.scheduler_pid, isolated.workers_pid, *(p.pid for p in workers)]
    assert os.getpid() not in pids
    for pid in pids:
        environ = environ_of(pid)
        for name, value in SERVICE_ENV.items():
            assert value not in environ, f"{name} reached process {pid}"
    assert isolated.client.run_on_scheduler(os.getpid) == isolated.scheduler_pid


def _saturation(dask_scheduler: object) -> float:
    return float(dask_scheduler.WORKER_SATURATION)  # type: ignore[attr-defined]


def test_the_scheduler_sends_workers_tasks_ahead_as_set(isolated: LocalCompute) -> None:
    """The local default is unbounded (the engine's window is the queue); a setting
    reaches the scheduler."""
    assert isolated.client.run_on_scheduler(_saturation) == float("inf")
    with LocalCompute(
        LocalSettings(n_workers=1, dashboard_address=None, worker_saturation=2.5, sandbox=False)
    ) as local:
        assert local.client.run_on_scheduler(_saturation) == 2.5


def test_a_task_with_the_workers_certificates_cannot_drive_the_scheduler(
    isolated: LocalCompute,
) -> None:
    report = isolated.client.submit(probe_scheduler, pure=False).result(timeout=120)
    assert_refused(report["run_function"], "run_function")
    assert "only the service's client" in report["run_function"]
    assert_refused(report["register_plugin"], "register_scheduler_plugin")
    assert_refused(report["client"], "a Client with the worker's certificates")
    assert "only the service's client" in report["client"]
    assert report["leaked"] == []
    # nothing was planted, and the service's own client still does everything
    assert "planted" not in isolated.client.run_on_scheduler(
        lambda dask_scheduler: list(dask_scheduler.plugins), wait=True
    )


def test_run_and_command_steps_of_a_campaign_are_refused_and_see_no_secret(
    service: Service, isolated: LocalCompute
) -> None:
    address = isolated.client.scheduler.address
    doc = spec_doc(
        "probe",
        {
            "run_probe": {"run": "tests.cluster.scheduler.probes:probe_scheduler"},
            "command_probe": {
                "command": f"{sys.executable} -m tests.cluster.scheduler.probes {{{{ address }}}}",
                "with": {"address": address},
            },
        },
    )
    cid, state = run(service, isolated, doc)
    assert state == "succeeded"
    report = service.task(cid, "run_probe").result
    assert report["scheduler"] == address
    for attempt in ("run_function", "register_plugin", "client"):
        assert_refused(report[attempt], attempt)
    assert report["leaked"] == []
    command = service.task(cid, "command_probe").result
    assert command["leaked"] == []
    assert_refused(command["client"], "a client without certificates")
    assert not [name for name in command["environ"] if name.startswith("AWS_SECRET")]
    assert "ORCHESTRATOR_OUTPUT_DIR" in command["environ"]
    assert "SITE_MODULES" in command["environ"]
