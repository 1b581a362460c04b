"""Local workers in their own mount and PID namespaces: the service's hidden folders are
empty for task code, the service's processes are not visible, and results folders stay
writable. Needs unprivileged user namespaces (skipped, with the reason, without them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import LocalCompute, LocalSettings
from cluster.scheduler.sandbox import namespaces_available


def _look(hidden: Path, results: Path) -> dict[str, object]:  # runs in a task
    pids = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    (results / "written.txt").write_text("ok")
    return {"hidden": sorted(os.listdir(hidden)), "pids": sorted(pids)}


@pytest.fixture
def sandboxed(tmp_path: Path) -> Iterator[tuple[LocalCompute, Path, Path]]:
    if not namespaces_available():
        pytest.skip("unprivileged user namespaces are not available here (unshare --user)")
    hidden = tmp_path / "data"
    hidden.mkdir()
    (hidden / "dev-issuer-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    results = tmp_path / "results"
    results.mkdir()
    settings = LocalSettings(n_workers=1, dashboard_address=None, hidden_paths=[hidden])
    with LocalCompute(settings) as local:
        yield local, hidden, results


def test_tasks_see_the_hidden_folder_empty_and_no_service_process(
    sandboxed: tuple[LocalCompute, Path, Path],
) -> None:
    local, hidden, results = sandboxed
    seen = local.client.submit(_look, hidden, results, pure=False).result(timeout=60)
    assert seen["hidden"] == []
    assert (hidden / "dev-issuer-key.pem").exists()  # still there for the service
    assert (results / "written.txt").read_text() == "ok"
    assert os.getpid() not in seen["pids"]  # type: ignore[operator]
    assert local.scheduler_pid not in seen["pids"]  # type: ignore[operator]
