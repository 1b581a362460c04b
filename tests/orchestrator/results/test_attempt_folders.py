"""A task's output folder holds only what its current attempt writes: the files of a failed
attempt are set aside, so the manifest and the provenance of the attempt that succeeds list
only its own files (local results here; results on the cluster, with batch steps, in
test_cluster_results_slurm.py)."""

from __future__ import annotations

import time
from pathlib import Path

from cluster import LocalCompute
from orchestrator.results import ResultsLocation
from orchestrator.results.attempts import fresh_task_folder
from orchestrator.service import Service
from tests.helpers import run, spec_doc


def test_a_retried_task_lists_only_the_files_of_the_attempt_that_succeeded(
    service: Service, compute: LocalCompute
) -> None:
    doc = spec_doc(
        "retried",
        {"w": {"run": "tests.workloads:fails_first_attempt", "foreach": True, "retries": 2}},
        x=[10, 11],
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded", service.status(cid)
    record = service.store.get_campaign(cid)
    location = ResultsLocation(record.results_url)
    manifest = {(e["step"], e["point"]): e for e in location.read_manifest()}
    folder = Path(location.root)
    for point in (0, 1):
        entry = manifest[("w", point)]
        assert entry["attempt"] == 2
        assert [o["path"] for o in entry["outputs"]] == ["attempt-2.txt"]
        task_folder = folder / "w" / f"{point:06d}"
        assert sorted(p.name for p in task_folder.iterdir()) == ["attempt-2.txt"]
        kept = folder / "w" / f"{point:06d}.before-attempt-2"  # the failed attempt's, for reading
        assert sorted(p.name for p in kept.iterdir()) == ["attempt-1.txt"]
    registered = [
        item.payload
        for item in service.store.due_registrations(time.time() + 1, limit=1000)
        if item.kind == "task" and item.payload.get("state") == "succeeded"
    ]
    assert len(registered) == 2
    for payload in registered:
        assert [o["path"] for o in payload["outputs"]] == ["attempt-2.txt"]


def test_a_task_folder_is_emptied_for_each_attempt(tmp_path: Path) -> None:
    folder = tmp_path / "w" / "000003"
    assert fresh_task_folder(folder, 1) == folder and folder.is_dir()
    (folder / "a.txt").write_text("1")
    fresh_task_folder(folder, 2)
    assert list(folder.iterdir()) == []
    assert (tmp_path / "w" / "000003.before-attempt-2" / "a.txt").read_text() == "1"
    (folder / "b.txt").write_text("2")
    fresh_task_folder(folder, 2)  # the same attempt started twice: both kept
    assert list(folder.iterdir()) == []
    assert len(list((tmp_path / "w").glob("000003.before-attempt-2*"))) == 2
