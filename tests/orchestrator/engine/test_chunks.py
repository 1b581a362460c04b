"""Chunked foreach steps on a real LocalCluster and store: fewer Dask tasks than points, and
every point still a task of its own (row, state, attempts, result, events, manifest line,
provenance); failures and a lost worker re-run only the points that need it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distributed import get_task_stream

from cluster import LocalCompute
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from tests.helpers import run, spec_doc

W = "tests.workloads"


@contextmanager
def dask_tasks(compute: LocalCompute) -> Iterator[list[dict[str, Any]]]:
    """The Dask tasks the scheduler ran meanwhile (its task stream)."""
    found: list[dict[str, Any]] = []
    with get_task_stream(client=compute.client) as stream:
        yield found
    found.extend(stream.data)


def runs(counter: Path) -> Counter[tuple[int, int]]:
    """(point, attempt) → how many times it ran."""
    lines = counter.read_text().split() if counter.exists() else []
    return Counter((int(p), int(a)) for p, a in zip(lines[0::3], lines[1::3], strict=True))


def counted_step(counter: Path, chunk: int | str, **with_: Any) -> dict[str, Any]:
    return {
        "run": f"{W}:counted",
        "foreach": True,
        "chunk": chunk,
        "with": {"counter": str(counter), **with_},
    }


def test_chunks_group_points_and_each_point_stays_a_task(
    any_service: Service, compute: LocalCompute, tmp_path: Path
) -> None:
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "chunked",
        {
            "counted": counted_step(counter, 10),
            "total": {"run": f"{W}:total_of_counted", "needs": ["counted"]},
        },
        x={"range": [0, 40]},
    )
    with dask_tasks(compute) as tasks:
        cid, state = run(any_service, compute, doc)
    assert state == "succeeded"
    mine = [t for t in tasks if cid in str(t["key"])]
    chunk_keys = {str(t["key"]) for t in mine if str(t["key"]).startswith("counted-")}
    assert len(chunk_keys) == 4, chunk_keys  # 40 points in chunks of 10
    assert runs(counter) == {(x, 1): 1 for x in range(40)}
    rows = {t.point: t for t in any_service.store.list_tasks(cid, step="counted", limit=100)}
    assert sorted(rows) == list(range(40))
    for x, row in rows.items():
        assert (row.state, row.attempt, row.result) == ("succeeded", 1, x * x)
        assert row.started_at is not None and row.finished_at is not None
    total = any_service.store.get_task(cid, "total", None)
    assert total is not None and total.result == sum(x * x for x in range(40))
    events = any_service.events(cid, limit=10_000)
    for x in range(40):
        states = [e.state for e in events if e.step == "counted" and e.point == x]
        assert states == ["queued", "running", "succeeded"], (x, states)
    location = ResultsLocation(any_service.store.get_campaign(cid).results_url)
    manifest = [e for e in location.read_manifest() if e["step"] == "counted"]
    assert sorted(e["point"] for e in manifest) == list(range(40))
    assert all(e["state"] == "succeeded" and e["attempt"] == 1 for e in manifest)
    assert Path(location.path("counted/000017/out.txt")).read_text() == "17"
