"""Chunked foreach steps on a real LocalCluster and store: fewer Dask tasks than points, and
every point still a task of its own (row, state, attempts, result, events, manifest line,
provenance); failures and a lost worker re-run only the points that need it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from math import inf
from pathlib import Path
from typing import Any

from distributed import get_task_stream

from cluster import LocalCompute, LocalSettings
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from tests.helpers import run, spec_doc, submit, task_states, wait_for

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


def test_a_failing_point_is_retried_alone(service: Service, compute: LocalCompute, tmp_path: Path):
    counter = tmp_path / "runs.txt"
    step = counted_step(counter, 5, fail=7)
    step["retries"] = 1
    doc = spec_doc("fail-one", {"counted": step}, x={"range": [0, 20]})
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    expected = {(x, 1): 1 for x in range(20)} | {(7, 2): 1}
    assert runs(counter) == expected  # the others of its chunk ran once
    rows = {t.point: t for t in service.store.list_tasks(cid, step="counted", limit=100)}
    assert rows[7].attempt == 2 and rows[7].result == 49
    assert all(rows[x].attempt == 1 for x in range(20) if x != 7)
    events = [e for e in service.events(cid, limit=10_000) if e.point == 7]
    assert [e.state for e in events] == [
        "queued",
        "running",
        "failed",
        "queued",
        "running",
        "succeeded",
    ]


def test_a_failing_point_without_retries_fails_alone(
    service: Service, compute: LocalCompute, tmp_path: Path
):
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "fail-only-one",
        {
            "counted": counted_step(counter, 4, fail=2),
            "plus": {"run": f"{W}:plus_one", "foreach": True, "needs": ["counted"], "chunk": 3},
        },
        x={"range": [0, 8]},
    )
    cid, state = run(service, compute, doc)
    assert state == "failed"
    counted = {t.point: t.state for t in service.store.list_tasks(cid, step="counted")}
    plus = {t.point: t.state for t in service.store.list_tasks(cid, step="plus")}
    assert counted == {x: "failed" if x == 2 else "succeeded" for x in range(8)}
    assert plus == {x: "succeeded" for x in range(8) if x != 2}  # point 2: held, no row
    assert service.status(cid)["steps"]["plus"]["pending"] == 1
    failed = service.store.get_task(cid, "counted", 2)
    assert failed is not None and "fails its first attempt" in (failed.error or "")


def test_a_worker_killed_mid_chunk_reruns_only_unfinished_points(
    any_service: Service, compute: LocalCompute, tmp_path: Path
):
    counter = tmp_path / "runs.txt"
    doc = spec_doc("killed", {"counted": counted_step(counter, 8, kill=3)}, x={"range": [0, 8]})
    cid, state = run(any_service, compute, doc)
    assert state == "succeeded", any_service.status(cid)
    ran = runs(counter)
    assert all(ran[(x, 1)] == 1 for x in range(8) if x <= 3)  # never run twice by Dask
    assert not [key for key in ran if key[0] < 3 and key[1] > 1]  # finished: not run again
    assert ran[(3, 2)] == 1  # the point that killed its worker ran again, on its own
    rows = {t.point: t for t in any_service.store.list_tasks(cid, step="counted", limit=100)}
    assert all(rows[x].result == x * x for x in range(8))
    assert [rows[x].attempt for x in range(3)] == [1, 1, 1]
    lost = [
        e
        for e in any_service.events(cid, limit=10_000)
        if e.message and "lost with its chunk" in e.message
    ]
    assert {e.point for e in lost} >= {3}
    assert all("the worker running this chunk died" in (e.message or "") for e in lost)
    assert all(e.point is not None and e.point >= 3 for e in lost)


def test_chunks_waiting_on_a_worker_that_dies_run_elsewhere_as_chunks(
    service: Service, tmp_path: Path
):
    """With `worker_saturation: inf` every chunk is assigned to a worker at once: a worker
    that dies holds chunks that never started. Only the chunk that ran there is lost; the
    others run elsewhere, as chunks, and no point of theirs runs on its own."""
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "dies-with-a-queue",
        {"counted": {**counted_step(counter, 2, kill=1, seconds=0.2), "retries": 1}},
        x={"range": [0, 16]},
    )
    settings = LocalSettings(
        n_workers=2, threads_per_worker=1, dashboard_address=None, worker_saturation=inf
    )
    with LocalCompute(settings) as compute, dask_tasks(compute) as tasks:
        cid, state = run(service, compute, doc)
    failed = [(t.point, t.error) for t in service.store.list_tasks(cid) if t.state != "succeeded"]
    assert state == "succeeded", (failed, runs(counter))
    ran = runs(counter)
    assert ran[(1, 1)] == 1 and ran[(1, 2)] == 1  # the point that killed its worker, again
    assert all(ran[(x, 1)] == 1 for x in range(16) if x != 1), ran  # every other point once
    lost = [
        e.point
        for e in service.events(cid, limit=10_000)
        if e.message and "lost with its chunk" in e.message
    ]
    assert set(lost) <= {0, 1}, lost  # only the chunk that was running
    chunks = {str(t["key"]) for t in tasks if cid in str(t["key"])}
    assert len(chunks) <= 9, chunks  # 8 chunks, and point 1 on its own: nothing split


def test_foreach_to_foreach_across_chunks_of_other_sizes(
    service: Service, compute: LocalCompute, tmp_path: Path
):
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "pointwise",
        {
            "counted": counted_step(counter, 3),
            "plus": {"run": f"{W}:plus_one", "foreach": True, "needs": ["counted"], "chunk": 5},
            "square": {"run": f"{W}:square", "foreach": True},  # one point per task
            "scaled": {"run": f"{W}:scaled", "foreach": True, "needs": ["square"], "chunk": 4},
            "total": {"run": f"{W}:total", "needs": ["scaled"]},
        },
        x={"range": [0, 17]},
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    plus = {t.point: t.result for t in service.store.list_tasks(cid, step="plus", limit=100)}
    assert plus == {x: x * x + 1 for x in range(17)}
    scaled = {t.point: t.result for t in service.store.list_tasks(cid, step="scaled", limit=100)}
    assert scaled == {x: float(x * x) for x in range(17)}
    total = service.store.get_task(cid, "total", None)
    assert total is not None and total.result == sum(x * x for x in range(17))
    # each task queued and run once, although its point advanced while it waited in a
    # partial chunk (another step of the point finished meanwhile)
    for step in ("counted", "plus", "square", "scaled"):
        rows = service.store.list_tasks(cid, step=step, limit=100)
        assert {t.attempt for t in rows} == {1}, (step, [(t.point, t.attempt) for t in rows])
    events = service.events(cid, limit=10_000)
    for step in ("plus", "scaled"):
        for x in range(17):
            states = [e.state for e in events if e.step == step and e.point == x]
            assert states == ["queued", "running", "succeeded"], (step, x, states)


def test_cancel_a_point_of_a_chunk(service: Service, compute: LocalCompute, tmp_path: Path):
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "cancel-point", {"counted": counted_step(counter, 10, seconds=0.3)}, x={"range": [0, 20]}
    )
    cid = submit(service, doc)
    outcome: dict[str, str] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("s", service.run(cid, compute)))
    thread.start()
    wait_for(lambda: (1, 1) in runs(counter), what="the first chunk to start")
    service.cancel(cid, point=8)  # not reached yet by its chunk
    thread.join(120)
    assert outcome["s"] == "cancelled"
    states = task_states(service, cid, "counted")
    assert states == {x: "cancelled" if x == 8 else "succeeded" for x in range(20)}
    row = service.store.get_task(cid, "counted", 8)
    # its chunk may still reach it on the worker: what it returns then is not recorded
    assert row is not None and row.result is None and row.finished_at is not None


def test_cancel_a_campaign_of_chunks(service: Service, compute: LocalCompute, tmp_path: Path):
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "cancel-all", {"counted": counted_step(counter, 10, seconds=0.3)}, x={"range": [0, 40]}
    )
    cid = submit(service, doc)
    outcome: dict[str, str] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("s", service.run(cid, compute)))
    thread.start()
    wait_for(lambda: (1, 1) in runs(counter), what="the first chunk to start")
    service.cancel(cid)
    thread.join(120)
    assert outcome["s"] == "cancelled"
    status = service.status(cid)
    assert status["counts"]["cancelled"] >= 20, status
    assert status["counts"]["cancelled"] + status["counts"]["succeeded"] == 40, status
    assert not compute.client.processing() or all(
        cid not in str(key) for keys in compute.client.processing().values() for key in keys
    )


def test_extend_a_chunked_campaign(service: Service, compute: LocalCompute, tmp_path: Path):
    counter = tmp_path / "runs.txt"
    doc = spec_doc(
        "extend-chunks",
        {
            "counted": counted_step(counter, 4),
            "total": {"run": f"{W}:total_of_counted", "needs": ["counted"]},
        },
        x={"range": [0, 10]},
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    service.extend(cid, parameters={"x": {"range": [10, 15]}})
    assert service.run(cid, compute) == "succeeded"
    assert runs(counter) == {(x, 1): 1 for x in range(15)}  # finished points untouched
    total = service.store.get_task(cid, "total", None)
    assert total is not None and total.result == sum(x * x for x in range(15))


def test_chunk_auto_runs_fast_points_in_few_dask_tasks(
    service: Service, compute: LocalCompute
) -> None:
    doc = spec_doc(
        "auto",
        {"noop": {"run": f"{W}:noop", "foreach": True, "chunk": "auto"}},
        x={"range": [0, 2000]},
    )
    with dask_tasks(compute) as tasks:
        cid, state = run(service, compute, doc)
    assert state == "succeeded"
    assert service.status(cid)["steps"]["noop"]["succeeded"] == 2000
    mine = [t for t in tasks if cid in str(t["key"])]
    # chunks of one first, then of about a second of points (at most 2000 / (2 × 2)); how
    # many points take a second depends on the load of the machine: 10× fewer tasks at least
    assert 4 <= len(mine) <= 200, len(mine)


def test_large_and_non_json_results_flow_between_chunks(
    service: Service, compute: LocalCompute
) -> None:
    doc = spec_doc(
        "arrays",
        {
            "array": {"run": f"{W}:array", "foreach": True, "chunk": 2, "with": {"n": 200_000}},
            "array_sum": {"run": f"{W}:array_sum", "foreach": True, "needs": ["array"], "chunk": 3},
        },
        x={"range": [0, 5]},
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded", service.status(cid)
    arrays = service.store.list_tasks(cid, step="array", limit=10)
    assert all(t.result is None and (t.result_url or "").endswith("result.pkl") for t in arrays)
    sums = {t.point: t.result for t in service.store.list_tasks(cid, step="array_sum", limit=10)}
    assert sums == {x: float(sum(range(200_000))) for x in range(5)}


def test_each_point_of_a_chunk_has_its_provenance(tmp_path: Path, compute: LocalCompute) -> None:
    from orchestrator.kg import EmbeddedKnowledgeGraph
    from orchestrator.kg.settings import embedded_path
    from orchestrator.settings import Settings
    from tests.conftest import fast_engine
    from tests.orchestrator.kg.test_used import _doc, _files

    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine()
    )
    doc = _doc()
    doc["parameters"]["x"] = [10, 20, 30, 40, 50]
    doc["steps"]["write"]["chunk"] = 2
    doc["steps"]["copy"]["chunk"] = 3
    service = Service(settings)
    try:
        cid, state = run(service, compute, doc)
        assert state == "succeeded"
        service.registrar().close(drain=30)
        assert service.store.outbox_backlog(cid) == 0
    finally:
        service.close()
    kg = EmbeddedKnowledgeGraph(embedded_path(settings.kg, settings.data_dir))
    written = _files(kg, "write")
    assert sorted(written.values()) == sorted(_files(kg, "copy").values())
    assert sorted(written.values()) == ["10", "20", "30", "40", "50"]
    rows = kg.query(
        """SELECT ?x ?file WHERE {
             ?task wf:step "copy" ; wf:parameter [ schema:name "x" ; schema:value ?x ] ;
                   prov:used ?collection .
             ?collection a prov:Collection ; prov:hadMember ?file }"""
    )
    assert isinstance(rows, list)
    # each copy point used exactly its own point's file, whichever chunks they ran in
    assert sorted((r["x"], r["file"]) for r in rows) == sorted((x, f) for f, x in written.items())


def test_a_report_without_its_chunks_token_is_ignored(
    service: Service, compute: LocalCompute
) -> None:
    doc = spec_doc(
        "forged",
        {"forge": {"run": f"{W}:forge_report", "foreach": True, "chunk": 8}},
        x=list(range(8)),
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    results = {t.point: t.result for t in service.store.list_tasks(cid, step="forge", limit=10)}
    assert results == {x: x for x in range(8)}


def test_a_chunked_command_step(service: Service, compute: LocalCompute) -> None:
    script = 'echo "{\\"x\\": {{ x }}, \\"point\\": {{ point }}}" > result.json'
    doc = spec_doc(
        "commands",
        {"cmd": {"command": script, "foreach": True, "chunk": 4}},
        x=[3, 5, 7, 9, 11, 13],
    )
    with dask_tasks(compute) as tasks:
        cid, state = run(service, compute, doc)
    assert state == "succeeded", service.status(cid)
    assert len([t for t in tasks if cid in str(t["key"])]) == 2
    rows = {t.point: t.result for t in service.store.list_tasks(cid, step="cmd", limit=10)}
    assert rows == {p: {"x": x, "point": p} for p, x in enumerate([3, 5, 7, 9, 11, 13])}


def test_a_chunk_whose_worker_retires_reruns_only_unfinished_points(tmp_path: Path) -> None:
    """A worker retired while it runs a chunk (SLURM workers retire at their `--lifetime`):
    Dask starts the chunk again elsewhere, which runs none of its points; only the points
    the engine had no outcome of run again. A cluster of its own: one worker leaves it."""
    from orchestrator.settings import Settings
    from tests.conftest import fast_engine

    counter = tmp_path / "runs.txt"
    doc = spec_doc("retired", {"counted": counted_step(counter, 8, seconds=0.4)}, x=list(range(8)))
    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine()
    )
    service = Service(settings)
    settings_2 = LocalSettings(n_workers=2, threads_per_worker=1, dashboard_address=None)
    try:
        with LocalCompute(settings_2) as compute:
            cid = submit(service, doc)
            outcome: dict[str, str] = {}
            thread = threading.Thread(
                target=lambda: outcome.setdefault("s", service.run(cid, compute))
            )
            thread.start()
            wait_for(lambda: (3, 1) in runs(counter), what="the chunk to reach point 3")
            busy = [w for w, keys in compute.client.processing().items() if keys]
            assert len(busy) == 1, busy
            compute.client.retire_workers(busy)
            thread.join(120)
    finally:
        service.close()
    assert outcome["s"] == "succeeded"
    ran = runs(counter)
    assert all(count == 1 for count in ran.values()), ran  # nothing ran twice in an attempt
    assert ran[(0, 1)] == ran[(1, 1)] == 1 and (0, 2) not in ran and (1, 2) not in ran
    rows = {t.point: t for t in service.store.list_tasks(cid, step="counted", limit=10)}
    assert {x: rows[x].result for x in range(8)} == {x: x * x for x in range(8)}
    events = service.events(cid, limit=10_000)
    assert any("ChunkStartedBefore" in (e.message or "") for e in events)
