"""The manifest rebuilt from the store on run start: the missing lines written again (with
the output files registered with them), in memory that does not grow with the campaign."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import text

from cluster import LocalCompute
from orchestrator.engine.manifest import Manifest
from orchestrator.engine.plan import compile_plan
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from orchestrator.spec import CampaignSpec
from orchestrator.store import Store, WriteBatch
from tests.helpers import spec_doc, submit, task_states

POINTS = 40_000
MISSING = {5, 17_000, 39_999}  # no line in the manifest
STALE = 123  # its line names an earlier attempt


def _store(tmp_path: Path) -> tuple[Store, str, dict[str, object]]:
    spec = {
        "name": "m",
        "parameters": {"x": {"range": [0, POINTS]}},
        "steps": {"a": {"run": "tests.workloads:square", "foreach": True}},
        "results": str(tmp_path / "results"),
    }
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    cid = store.create_campaign(
        spec=spec, name="m", points=POINTS, results_url=str(tmp_path / "results")
    )
    rows = [
        {"c": cid, "p": p, "a": 2 if p == STALE else 1, "r": json.dumps(p * p), "f": float(p)}
        for p in range(POINTS)
    ]
    with store.engine.begin() as conn:  # raw SQL: the engine's path would take minutes
        conn.execute(
            text(
                "INSERT INTO tasks (campaign_id, step, point, state, attempt, result,"
                " finished_at) VALUES (:c, 'a', :p, 'succeeded', :a, :r, :f)"
            ),
            rows,
        )
    batch = WriteBatch(cid)  # output files registered with some tasks, missing ones among them
    for p in (5, 6, STALE):
        output = {"path": f"out-{p}.txt", "url": f"/r/out-{p}.txt", "size": 1, "digest": "d"}
        payload = {"step": "a", "point": p, "attempt": 2 if p == STALE else 1}
        batch.outbox.append(("task", {**payload, "state": "succeeded", "outputs": [output]}))
    store.apply(batch)
    return store, cid, spec


def _write_manifest(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.jsonl").open("w") as handle:
        for p in range(POINTS):
            if p not in MISSING:
                line = {"step": "a", "point": p, "parameters": {"x": p}, "state": "succeeded"}
                line |= {"attempt": 1, "result": p * p, "output": f"{folder}/a/{p}", "outputs": []}
                handle.write(json.dumps(line) + "\n")


def test_rebuild_writes_only_the_missing_lines_in_bounded_memory(tmp_path: Path):
    store, cid, spec = _store(tmp_path)
    results = tmp_path / "results"
    _write_manifest(results)
    location = ResultsLocation(str(results))
    plan = compile_plan(CampaignSpec.model_validate(spec), introspect=False)
    manifest = Manifest(location, plan, None, upload_deadline=10.0)

    tracemalloc.start()
    started = time.perf_counter()
    written = manifest.rebuild(store, cid, page=2000)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert written == len(MISSING) + 1
    lines = (results / "manifest.jsonl").read_text().splitlines()[POINTS - len(MISSING) :]
    added = {(e["point"], e["attempt"]): e for e in map(json.loads, lines)}
    assert set(added) == {(5, 1), (17_000, 1), (39_999, 1), (STALE, 2)}
    assert added[(5, 1)]["outputs"][0]["path"] == "out-5.txt"
    assert added[(STALE, 2)]["outputs"][0]["path"] == f"out-{STALE}.txt"
    assert added[(17_000, 1)]["parameters"] == {"x": 17_000}
    # 40,000 lines and rows went through: holding them (or a dict of them) takes tens of MB
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB over {elapsed:.1f} s"
    assert manifest.rebuild(store, cid, page=2000) == 0  # complete now
    store.close()


def test_a_manifest_that_cannot_be_written_fails_the_campaign_until_restarted(
    service: Service, compute: LocalCompute
) -> None:
    """Every task succeeds, but no manifest line can be stored: the campaign does not end
    `succeeded` with an incomplete manifest. It fails, saying why and what to do; once the
    location works again, `restart` writes the whole manifest and it succeeds."""
    doc = spec_doc("nomanifest", {"sq": {"run": "tests.workloads:square", "foreach": True}})
    doc["parameters"] = {"x": [1, 2, 3]}
    cid = submit(service, doc)
    manifest = Path(service.store.get_campaign(cid).results_url) / "manifest.jsonl"
    manifest.mkdir(parents=True)  # a folder where the file goes: every append fails

    assert service.run(cid, compute) == "failed"
    record = service.store.get_campaign(cid)
    assert record.message is not None
    assert "the results manifest is incomplete" in record.message
    assert "Is a directory" in record.message and "orchestrator restart" in record.message
    assert set(task_states(service, cid, "sq").values()) == {"succeeded"}

    manifest.rmdir()
    assert service.restart(cid) == 0
    assert service.run(cid, compute) == "succeeded"
    lines = ResultsLocation(record.results_url).read_manifest()
    assert sorted((e["point"], e["result"]) for e in lines) == [(0, 1), (1, 4), (2, 9)]
