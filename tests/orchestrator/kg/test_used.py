"""What a task used: the outputs its upstream attempts handed it, as PROV collections.

A succeeded attempt's outputs form a `prov:Collection`; a `foreach` step's collection has
its attempts' collections as members. A task `prov:used` the collections it was given (the
same point's upstream attempt, a single step's attempt, or a gathered step whole), so
`prov:used/prov:hadMember` reaches the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.request import url2pathname

import pyoxigraph
import pytest

from cluster import LocalCompute
from orchestrator.kg import EmbeddedKnowledgeGraph, OutputEntity, TaskActivity, to_quads
from orchestrator.kg.model import (
    campaign_iri,
    output_iri,
    outputs_iri,
    step_outputs_iri,
    task_iri,
)
from orchestrator.kg.outbox import to_registrables, used_iris
from orchestrator.kg.settings import embedded_path
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.store import OutboxItem
from tests.conftest import fast_engine
from tests.helpers import run, spec_doc
from tests.orchestrator.kg.sample import CAMPAIGN, PROJECT, T0, task


# ------------------------------------------------------------------------------- IRIs
def test_outputs_iris_name_the_attempt_and_the_step() -> None:
    attempt = task_iri(PROJECT, CAMPAIGN, "simulate", 2, 1)
    assert outputs_iri(PROJECT, CAMPAIGN, "simulate", 2, 1) == attempt + "/outputs"
    assert output_iri(PROJECT, CAMPAIGN, "simulate", 2, 1, "/a/b.h5") == attempt + "/outputs/a/b.h5"
    campaign = campaign_iri(PROJECT, CAMPAIGN)
    assert step_outputs_iri(PROJECT, CAMPAIGN, "simulate") == campaign + "/steps/simulate/outputs"
    assert step_outputs_iri(PROJECT, CAMPAIGN, "a b/c") == campaign + "/steps/a%20b%2Fc/outputs"
    pyoxigraph.NamedNode(step_outputs_iri(PROJECT, "ü id", "ü step"))  # a valid IRI


def test_a_task_ref_gives_the_same_iris() -> None:
    ref = task(point=2, attempt=1).ref
    assert ref.outputs_iri == outputs_iri(PROJECT, CAMPAIGN, "simulate", 2, 1)
    assert ref.step_outputs_iri == step_outputs_iri(PROJECT, CAMPAIGN, "simulate")
    assert ref.output_iri("x y.json") == output_iri(PROJECT, CAMPAIGN, "simulate", 2, 1, "x y.json")
    single = task(point=None).ref
    assert single.outputs_iri == task_iri(PROJECT, CAMPAIGN, "simulate", None, 0) + "/outputs"
    # attempts, points and steps do not share a collection
    collections = {
        task(point=1).ref.outputs_iri,
        task(point=1, attempt=1).ref.outputs_iri,
        task(point=2).ref.outputs_iri,
        task(point=None).ref.outputs_iri,
        task(step="features", point=1).ref.outputs_iri,
        ref.step_outputs_iri,
        task(step="features").ref.step_outputs_iri,
    }
    assert len(collections) == 7


@pytest.mark.parametrize("outputs", ["trace.npz", ["ok", ""], ["/"]])
def test_invalid_outputs_are_refused_when_built(outputs: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        task(outputs=outputs)


def test_the_step_membership_goes_with_the_attempts_registration(tmp_path: Path) -> None:
    kg = EmbeddedKnowledgeGraph(tmp_path / "kg")
    first, other = task(point=1, outputs=("trace.npz",)), task(point=2)
    kg.register([first, other])
    members = f"SELECT ?m WHERE {{ <{first.ref.step_outputs_iri}> prov:hadMember ?m }} ORDER BY ?m"
    assert kg.query(members) == [{"m": first.ref.outputs_iri}, {"m": other.ref.outputs_iri}]
    kg.register([task(point=1, state="failed", outputs=("trace.npz",))])  # replaced
    assert kg.query(members) == [{"m": other.ref.outputs_iri}]
    assert kg.query(f"ASK {{ <{first.ref.outputs_iri}> ?p ?o }}") is False


# ---------------------------------------------------------------------- to_registrables
def _task_row(**payload: Any) -> OutboxItem:
    base = {
        "project": PROJECT,
        "parameters": {"amplitude": 0.1},
        "step": "features",
        "point": 1,
        "attempt": 0,
        "state": "succeeded",
        "started_at": T0.timestamp(),
        "ended_at": T0.timestamp() + 5,
    }
    return OutboxItem(1, CAMPAIGN, "task", {**base, **payload}, 0)


def _activity(item: OutboxItem) -> TaskActivity:
    found = to_registrables(item)
    assert isinstance(found[0], TaskActivity)
    return found[0]


def test_used_names_the_upstream_outputs_collections() -> None:
    row = _task_row(used=[["simulate", 1, 2], ["setup", None, 0], ["traces"]])
    assert tuple(_activity(row).used) == (
        outputs_iri(PROJECT, CAMPAIGN, "simulate", 1, 2),
        outputs_iri(PROJECT, CAMPAIGN, "setup", None, 0),
        step_outputs_iri(PROJECT, CAMPAIGN, "traces"),
    )


def test_old_payloads_without_used_still_register() -> None:
    activity = _activity(_task_row())
    assert tuple(activity.used) == () and tuple(activity.outputs) == ()
    collection = pyoxigraph.NamedNode(activity.ref.outputs_iri)  # empty, still registered
    assert any(q.subject == collection for q in to_quads(activity))


def test_outputs_are_the_collections_members() -> None:
    out = {"path": "d/trace.npz", "url": "/r/trace.npz", "size": 3, "digest": "sha256:00"}
    items = to_registrables(_task_row(outputs=[out, {**out, "relpath": "log.txt"}]))
    activity, files = items[0], items[1:]
    assert isinstance(activity, TaskActivity)
    assert all(isinstance(f, OutputEntity) for f in files)
    assert activity.output_iris == tuple(f.iri for f in files)
    assert files[0].iri == activity.ref.outputs_iri + "/d/trace.npz"


@pytest.mark.parametrize(
    "used", [["simulate"], [["simulate", 1]], [["simulate", "1", 0]], [["s", 1, None]], [3]]
)
def test_a_malformed_used_is_refused(used: Any) -> None:
    """ValueError: the registrar refuses that registration for good (retrying won't help)."""
    with pytest.raises(ValueError, match="used"):
        used_iris(task().ref, used)


def test_used_is_deduplicated() -> None:
    ref = task().ref
    assert used_iris(ref, [["a", 0, 0], ["a", 0, 0], ["b"], ["b"]]) == (
        outputs_iri(PROJECT, CAMPAIGN, "a", 0, 0),
        step_outputs_iri(PROJECT, CAMPAIGN, "b"),
    )


# ------------------------------------------------------------------- a campaign, end to end
def write_value(x: int, ctx: Any) -> str:
    """Writes one file, nothing else (no log), so its collection holds exactly that file."""
    (ctx.output_dir / "value.txt").write_text(str(x))
    return "value.txt"


def copy_value(write: str, x: int, ctx: Any) -> str:
    (ctx.output_dir / "copy.txt").write_text(f"{write}:{x}")
    return "copy.txt"


def gather(copy: list[str]) -> int:
    return len(copy)


def _doc() -> dict[str, Any]:
    here = "tests.orchestrator.kg.test_used"
    return spec_doc(
        "used",
        {
            "write": {"run": f"{here}:write_value", "foreach": True},
            "copy": {"run": f"{here}:copy_value", "foreach": True, "needs": ["write"]},
            "gather": {"run": f"{here}:gather", "needs": ["copy"]},
        },
        x=[10, 20, 30],
    )


def _files(kg: EmbeddedKnowledgeGraph, step: str) -> dict[str, str]:
    """Each file a step's tasks wrote (IRI) → the value of `x` of its point."""
    rows = kg.query(
        f"""SELECT ?file ?x WHERE {{
              ?file a wf:Output ; prov:wasGeneratedBy ?task .
              ?task wf:step "{step}" ; wf:parameter [ schema:name "x" ; schema:value ?x ] }}"""
    )
    assert isinstance(rows, list)
    return {row["file"]: row["x"] for row in rows}


def _read(kg: EmbeddedKnowledgeGraph, file: str) -> str:
    rows = kg.query(f"SELECT ?url WHERE {{ <{file}> schema:contentUrl ?url }}")
    assert isinstance(rows, list) and len(rows) == 1
    return Path(url2pathname(rows[0]["url"].removeprefix("file://"))).read_text()


def test_tasks_used_the_files_their_upstream_tasks_wrote(
    tmp_path: Path, compute: LocalCompute
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine()
    )
    service = Service(settings)
    try:
        cid, state = run(service, compute, _doc())
        assert state == "succeeded"
        service.registrar().close(drain=30)
        assert service.store.outbox_backlog(cid) == 0
    finally:
        service.close()
    kg = EmbeddedKnowledgeGraph(embedded_path(settings.kg, settings.data_dir))
    written, copied = _files(kg, "write"), _files(kg, "copy")
    assert sorted(written.values()) == sorted(copied.values()) == ["10", "20", "30"]
    assert {_read(kg, f) for f in written} == {"10", "20", "30"}

    # each copy task used its own point's write collection: exactly that point's file
    rows = kg.query(
        """SELECT ?x ?file WHERE {
             ?task wf:step "copy" ; wf:parameter [ schema:name "x" ; schema:value ?x ] ;
                   prov:used ?collection .
             ?collection a prov:Collection ; prov:hadMember ?file }"""
    )
    assert isinstance(rows, list)
    assert sorted((r["x"], r["file"]) for r in rows) == sorted((x, f) for f, x in written.items())
    assert {_read(kg, f) for f in copied} == {"value.txt:10", "value.txt:20", "value.txt:30"}

    # the fan-in task used the copy step's collection: its members' members are every file
    rows = kg.query(
        """SELECT ?steps ?file WHERE {
             ?task wf:step "gather" ; prov:used ?steps .
             ?steps prov:hadMember ?attempt .
             ?attempt prov:wasGeneratedBy [ wf:step "copy" ] ; prov:hadMember ?file }"""
    )
    assert isinstance(rows, list)
    assert sorted(r["file"] for r in rows) == sorted(copied)  # one per point, none twice
    project = kg.query(f'SELECT ?p WHERE {{ ?c schema:identifier "{cid}" ; wf:project ?p }}')
    assert isinstance(project, list) and len(project) == 1
    assert {r["steps"] for r in rows} == {step_outputs_iri(project[0]["p"], cid, "copy")}
    assert kg.query(
        f"""ASK {{ <{step_outputs_iri(project[0]["p"], cid, "copy")}> a prov:Collection }}"""
    )
    # and through the path the README shows, the fan-in reaches no file of `write` directly
    direct = kg.query(
        """SELECT ?file WHERE { ?task wf:step "gather" ; prov:used/prov:hadMember ?file .
                                ?file a wf:Output }"""
    )
    assert direct == []
