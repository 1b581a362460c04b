"""The engine on a real LocalCluster, with SQLite and PostgreSQL stores."""

from __future__ import annotations

import math
from pathlib import Path

from cluster import LocalCompute
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from tests.helpers import run, spec_doc, task_states


def test_pointwise_and_gathered_results_flow(any_service: Service, compute: LocalCompute):
    doc = spec_doc(
        "flow",
        {
            "square": {"run": "tests.workloads:square", "foreach": True},
            "scaled": {
                "run": "tests.workloads:scaled",
                "foreach": True,
                "needs": ["square"],
                "with": {"factor": 2.0},
            },
            "total": {"run": "tests.workloads:total", "needs": ["scaled"]},
        },
        x={"range": [0, 30]},
    )
    cid, state = run(any_service, compute, doc)
    assert state == "succeeded"
    status = any_service.status(cid)
    assert status["points"] == 30
    assert status["counts"]["succeeded"] == 61
    assert status["steps"]["scaled"] == {
        "total": 30,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 30,
        "failed": 0,
        "cancelled": 0,
    }
    total = any_service.store.get_task(cid, "total", None)
    assert total is not None and total.result == sum(2.0 * x * x for x in range(30))
    point7 = any_service.store.get_task(cid, "scaled", 7)
    assert point7 is not None and point7.result == 98.0 and point7.attempt == 1


def test_every_state_change_is_an_event(service: Service, compute: LocalCompute):
    doc = spec_doc(
        "events", {"sq": {"run": "tests.workloads:square", "foreach": True}}, x=[1, 2, 3]
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    events = service.events(cid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for point in range(3):
        states = [e.state for e in events if e.step == "sq" and e.point == point]
        assert states == ["queued", "running", "succeeded"]
    campaign_states = [e.state for e in events if e.kind == "campaign"]
    assert campaign_states == ["accepted", "running", "succeeded"]


def test_large_and_non_json_results_go_to_the_results_location(
    service: Service, compute: LocalCompute
):
    doc = spec_doc(
        "arrays",
        {
            "array": {"run": "tests.workloads:array", "with": {"n": 200_000}},
            "array_sum": {"run": "tests.workloads:array_sum", "needs": ["array"]},
        },
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    array = service.store.get_task(cid, "array", None)
    assert array is not None and array.result is None
    assert array.result_url is not None and array.result_url.endswith("array/result.pkl")
    assert Path(array.result_url).stat().st_size > 200_000 * 8
    summed = service.store.get_task(cid, "array_sum", None)
    assert summed is not None and summed.result == sum(range(200_000))


def test_task_files_and_manifest_are_written_as_tasks_finish(
    service: Service, compute: LocalCompute
):
    doc = spec_doc(
        "files",
        {"write": {"run": "tests.workloads:write_file", "foreach": True}},
        x={"range": [0, 5]},
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    location = ResultsLocation(service.store.get_campaign(cid).results_url)
    for x in range(5):
        folder = Path(location.path(f"write/{x:06d}"))
        assert (folder / "value.txt").read_text() == str(x)
        assert "wrote" in (folder / "task.log").read_text()
    manifest = {e["point"]: e for e in location.read_manifest()}
    assert sorted(manifest) == [0, 1, 2, 3, 4]
    assert manifest[3]["parameters"] == {"x": 3}
    assert manifest[3]["state"] == "succeeded" and manifest[3]["result"] == "value.txt"
    assert manifest[3]["output"].endswith("write/000003")


def test_retries_then_success(service: Service, compute: LocalCompute):
    doc = spec_doc(
        "retry",
        {
            "flaky": {
                "run": "tests.workloads:flaky",
                "foreach": True,
                "retries": 2,
                "with": {"fail_times": 2},
            }
        },
        x=[1, 2],
    )
    cid, state = run(service, compute, doc)
    assert state == "succeeded"
    task = service.store.get_task(cid, "flaky", 1)
    assert task is not None and task.attempt == 3 and task.result == 2
    failures = [e for e in service.events(cid) if e.point == 1 and e.state == "failed"]
    assert len(failures) == 2 and "retry in" in (failures[0].message or "")


def test_failure_holds_downstream_and_restart_runs_only_what_is_left(
    service: Service, compute: LocalCompute, tmp_path: Path
):
    doc = spec_doc(
        "hold",
        {
            "check": {"run": "tests.workloads:fail_on", "foreach": True, "with": {"bad": 2}},
            "scaled": {
                "run": "tests.workloads:scaled",
                "foreach": True,
                "needs": ["check"],
                "with": {"factor": 1.0},
            },
            "total": {"run": "tests.workloads:total", "needs": ["scaled"]},
        },
        x={"range": [0, 4]},
    )
    # `scaled` takes `x` and an upstream named `check`: a **kwargs-free signature must match
    doc["steps"]["scaled"]["run"] = "tests.workloads:scaled_check"
    cid, state = run(service, compute, doc)
    assert state == "failed"
    assert task_states(service, cid, "check") == {
        0: "succeeded",
        1: "succeeded",
        2: "failed",
        3: "succeeded",
    }
    assert 2 not in task_states(service, cid, "scaled")  # held: never ran
    assert "total" not in {t.step for t in service.store.list_tasks(cid)}
    status = service.status(cid)
    assert status["steps"]["scaled"]["pending"] == 1 and status["steps"]["total"]["pending"] == 1
    assert "ValueError: x=2 is bad" in (service.store.get_task(cid, "check", 2).error or "")

    # the bad value goes away; restart re-runs the failed task and what it held, nothing else
    before = {t.step: t.attempt for t in service.store.list_tasks(cid, step="check")}
    service.store.engine.dispose()
    from orchestrator.spec import parse_document

    fixed = parse_document(
        {**doc, "steps": {**doc["steps"], "check": {**doc["steps"]["check"], "with": {"bad": -1}}}}
    )
    with service.store.engine.begin() as conn:
        from sqlalchemy import update

        from orchestrator.store.tables import campaigns

        conn.execute(
            update(campaigns).where(campaigns.c.id == cid).values(spec=fixed.to_document())
        )
    assert before
    assert service.restart(cid) == 1
    assert service.run(cid, compute) == "succeeded"
    attempts = {t.point: t.attempt for t in service.store.list_tasks(cid, step="check")}
    assert attempts == {0: 1, 1: 1, 2: 2, 3: 1}
    total = service.store.get_task(cid, "total", None)
    assert total is not None and total.result == 0 + 1 + 2 + 3


def test_timeout_stops_a_runaway_task(service: Service, compute: LocalCompute):
    doc = spec_doc(
        "timeout", {"spin": {"run": "tests.workloads:spin", "foreach": True, "timeout": 0.5}}, x=[1]
    )
    cid, state = run(service, compute, doc)
    assert state == "failed"
    task = service.store.get_task(cid, "spin", 0)
    assert task is not None and "TaskTimeout" in (task.error or "")
    assert task.finished_at is not None and task.started_at is not None
    assert task.finished_at - task.started_at < 10


def test_command_steps_render_parameters_and_read_result_json(
    service: Service, compute: LocalCompute
):
    doc = spec_doc(
        "cmd",
        {
            "echo": {
                "command": 'printf \'{"value": %s, "name": "%s"}\' {{ x }} {{ label }} '
                '> result.json; echo "point ${ORCHESTRATOR_POINT}"',
                "foreach": True,
            },
            "boom": {"command": "echo oops >&2; exit 3"},
        },
        x=[5, 6],
        label=["a b"],
    )
    cid, state = run(service, compute, doc)
    assert state == "failed"
    task = service.store.get_task(cid, "echo", 1)
    assert task is not None and task.result == {"value": 6, "name": "a b"}
    logs = service.logs(cid, "echo/1")
    assert "point 1" in logs
    boom = service.logs(cid, "boom")
    assert "status 3" in boom and "oops" in boom


def test_a_million_points_are_accepted_without_rows(service: Service):
    from orchestrator.spec import parse_document

    doc = spec_doc(
        "million",
        {"noop": {"run": "tests.workloads:noop", "foreach": True}},
        a={"range": [0, 1000]},
        b={"range": [0, 1000]},
    )
    cid = service.submit(parse_document(doc))
    status = service.status(cid)
    assert status["points"] == 1_000_000
    assert status["steps"]["noop"]["pending"] == 1_000_000
    assert service.store.list_tasks(cid) == []


def test_in_flight_tasks_stay_within_the_window(service: Service, compute: LocalCompute):
    from orchestrator.engine import Engine, EngineConfig
    from orchestrator.spec import parse_document

    doc = spec_doc(
        "window", {"noop": {"run": "tests.workloads:noop", "foreach": True}}, x={"range": [0, 300]}
    )
    cid = service.submit(parse_document(doc))
    engine = Engine(service.store, compute.client, cid, EngineConfig(max_in_flight=16))
    peak = 0
    original = engine._submit

    def watched() -> None:
        nonlocal peak
        original()
        peak = max(peak, len(engine.inflight))

    engine._submit = watched  # type: ignore[method-assign]
    assert engine.run() == "succeeded"
    assert 0 < peak <= 16
    assert service.status(cid)["counts"]["succeeded"] == 300
    assert math.isclose(len(service.store.list_tasks(cid, limit=10**6)), 300)
