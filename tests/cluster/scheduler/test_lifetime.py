"""The scheduler and worker processes stop with their compute, and do not outlive a service
killed with SIGKILL (they watch their stdin, a pipe from the service)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.conftest import REPO

SERVICE = """
from cluster import LocalCompute, LocalSettings
compute = LocalCompute(LocalSettings(n_workers=1, dashboard_address=None))
print(compute.scheduler_pid, compute.workers_pid, flush=True)
import time
time.sleep(600)
"""


def _gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        ]
        time.sleep(0.2)
    return alive


def test_the_processes_exit_when_the_service_is_killed() -> None:
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert service.stdout is not None
        scheduler, workers = (int(p) for p in service.stdout.readline().split())
        children = [c.pid for c in psutil.Process(workers).children(recursive=True)]
        assert psutil.pid_exists(scheduler) and children
        service.send_signal(signal.SIGKILL)
        service.wait()
        assert _gone([scheduler, workers, *children], 30) == []
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


def test_closing_the_compute_stops_its_processes() -> None:
    from cluster import LocalCompute, LocalSettings

    compute = LocalCompute(LocalSettings(n_workers=1, dashboard_address=None))
    assert compute.scheduler_pid is not None and compute.workers_pid is not None
    pids = [compute.scheduler_pid, compute.workers_pid]
    pids += [c.pid for c in psutil.Process(compute.workers_pid).children(recursive=True)]
    compute.close()
    assert _gone(pids, 5) == []
    compute.close()  # again: nothing to do


def _chatty() -> int:  # a task that prints a lot: nothing may block on its output
    for _ in range(2000):
        print("x" * 1000)
    return 1


def test_a_task_printing_a_lot_does_not_block() -> None:
    from cluster import LocalCompute, LocalSettings

    with LocalCompute(LocalSettings(n_workers=1, dashboard_address=None)) as compute:
        assert compute.client.submit(_chatty, pure=False).result(timeout=60) == 1
