"""A swept batch step with more points than the cluster's MaxArraySize, on the real local
SLURM: split into several job arrays, transparently, and their tasks followed with one
`sacct` per poll. The limit is set at our seam (`SlurmCommands.max_array_size`, otherwise read
from `scontrol show config`): the shared SLURM's configuration is left as it is."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.errors import SubmitRejected
from cluster.slurm.commands import DEFAULT_MAX_ARRAY_SIZE
from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.fixtures.slurm import REPO
from tests.helpers import spec_doc

pytestmark = pytest.mark.slurm


def test_the_cluster_says_its_max_array_size(slurm: SlurmCompute) -> None:
    commands = slurm.slurm
    before = commands.max_array_size
    try:
        commands.max_array_size = None
        assert commands.max_array_size_sync() == DEFAULT_MAX_ARRAY_SIZE  # the local slurm.conf
        assert commands.max_array_size == DEFAULT_MAX_ARRAY_SIZE  # kept: read once
    finally:
        commands.max_array_size = before


def test_seven_points_over_arrays_of_at_most_three(
    slurm: SlurmCompute, slurm_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slurm.slurm, "max_array_size", 3)
    sacct: list[list[str]] = []
    run = slurm.transport.run

    async def recording(command: Any, **kwargs: Any) -> Any:
        if isinstance(command, list) and command[:1] == ["sacct"]:
            sacct.append(command)
        return await run(command, **kwargs)

    monkeypatch.setattr(slurm.transport, "run", recording)
    script = 'echo "{\\"x\\": {{ x }}, \\"task\\": \\"$SLURM_ARRAY_TASK_ID\\"}" > result.json'
    step = {"batch": {"script": script}, "foreach": True}
    doc = spec_doc("big-array", {"sim": step}, x={"range": [0, 7]})
    cid = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
    assert slurm_service.run(cid, slurm) == "succeeded"

    tasks = {t.point: t for t in slurm_service.store.list_tasks(cid, limit=100)}
    jobs = {p: t.job_id.split("=", 1)[1] for p, t in tasks.items() if t.job_id}
    arrays: dict[str, list[int]] = {}
    for _, job in sorted(jobs.items()):
        array, index = job.split("_")
        arrays.setdefault(array, []).append(int(index))
    assert sorted(arrays.values()) == [[0], [0, 1, 2], [0, 1, 2]]  # 3 + 3 + 1
    assert {p: t.result["x"] for p, t in tasks.items()} == {p: p for p in range(7)}
    assert all(t.result["task"] == jobs[p].split("_")[1] for p, t in tasks.items())
    # the arrays in flight together were asked about in one sacct call
    asked = [set(c[c.index("-j") + 1].split(",")) for c in sacct if "-j" in c]
    assert any(set(arrays) <= ids for ids in asked), asked


def test_an_array_refused_after_others_were_queued_fails_only_its_own_tasks(
    slurm: SlurmCompute, slurm_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch refusing the second array (made to, at our seam: SLURM refuses by itself only
    what it would refuse for every array of the step) fails its tasks; the first array's
    tasks keep their jobs and succeed."""
    monkeypatch.setattr(slurm.slurm, "max_array_size", 2)
    submit_sync = slurm.slurm.submit_sync
    made: list[str] = []

    def second_refused(script: str, options: Any = ()) -> str:
        if made:
            raise SubmitRejected("sbatch rejected the job: refused for the test")
        made.append(submit_sync(script, options))
        return made[-1]

    monkeypatch.setattr(slurm.slurm, "submit_sync", second_refused)
    step = {"batch": {"script": "echo '{}' > result.json"}, "foreach": True}
    doc = spec_doc("refused-array", {"sim": step}, x={"range": [0, 4]})
    cid = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
    assert slurm_service.run(cid, slurm) == "failed"
    tasks = {t.point: t for t in slurm_service.store.list_tasks(cid, limit=100)}
    assert {p: t.state for p, t in tasks.items()} == {
        0: "succeeded",
        1: "succeeded",
        2: "failed",
        3: "failed",
    }
    assert all(made[0] in (tasks[p].job_id or "") for p in (0, 1))
    assert "refused for the test" in (tasks[2].error or "")
    history = slurm_service.events(cid, limit=1000)
    assert [e.state for e in history if e.kind == "task" and e.point == 0][-1] == "succeeded"
    assert not [e for e in history if e.point in (0, 1) and e.state == "failed"]
