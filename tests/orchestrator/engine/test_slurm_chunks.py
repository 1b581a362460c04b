"""A chunked step on SLURM-backed Dask workers (reached over SSH): the points' reports come
through the guarded scheduler, and a chunk is one Dask task."""

from __future__ import annotations

import pytest
from distributed import get_task_stream

from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.fixtures.slurm import REPO
from tests.helpers import spec_doc

pytestmark = pytest.mark.slurm


def test_a_chunked_step_on_slurm_workers(slurm: SlurmCompute, slurm_service: Service) -> None:
    doc = spec_doc(
        "chunks-on-slurm",
        {"where": {"run": "tests.workloads:slurm_job_id", "foreach": True, "chunk": 4}},
        x={"range": [0, 12]},
    )
    cid = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
    with get_task_stream(client=slurm.client) as stream:
        assert slurm_service.run(cid, slurm) == "succeeded"
    tasks = {t.point: t for t in slurm_service.store.list_tasks(cid, step="where", limit=100)}
    assert sorted(t.result["x"] for t in tasks.values()) == list(range(12))
    assert all(t.result["job"].isdigit() and t.attempt == 1 for t in tasks.values())
    assert len([d for d in stream.data if cid in str(d["key"])]) == 3
