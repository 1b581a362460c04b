"""The PROV-O mapping: JSON-LD terms, deterministic IRIs, and SPARQL over the result."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from pathlib import Path

import pyoxigraph
import pytest

from orchestrator.kg import (
    EmbeddedKnowledgeGraph,
    OutputEntity,
    Registrable,
    TaskRef,
    to_jsonld,
    to_quads,
)
from orchestrator.kg.model import BASE_NAMESPACE, campaign_iri, output_iri, task_iri
from orchestrator.kg.prov import PROV, SCHEMA, to_quads_via_jsonld
from tests.orchestrator.kg.sample import CAMPAIGN, PROJECT, T0, campaign, output, sweep, task


def _statements(item: Registrable) -> set[tuple[str, str, str]]:
    return {(str(q.subject), str(q.predicate), str(q.object)) for q in to_quads(item)}


def test_task_activity_and_its_output_in_prov_terms() -> None:
    activity = task(used=("s3://results/upstream/input.h5",))
    document = to_jsonld(activity)
    assert document["@context"]["prov"] == PROV
    assert "prov:Activity" in document["@type"]
    assert document["wf:step"] == "simulate" and document["wf:attempt"] == 0
    assert document["wf:slurmJobId"] == "4242"
    assert document["prov:startedAtTime"]["@type"] == "xsd:dateTime"
    used = {ref["@id"] for ref in document["prov:used"]}
    assert used == {campaign().configuration_iri, "s3://results/upstream/input.h5"}
    assert document["prov:wasInformedBy"] == {"@id": campaign().iri}

    statements = _statements(activity)
    assert (f"<{activity.iri}>", f"<{PROV}used>", f"<{campaign().configuration_iri}>") in statements
    ended = '"2025-03-01T12:00:20+00:00"^^<http://www.w3.org/2001/XMLSchema#dateTime>'
    assert (f"<{activity.iri}>", f"<{PROV}endedAtTime>", ended) in statements

    made = output(activity)
    out = to_jsonld(made)
    assert "prov:Entity" in out["@type"]
    assert out["prov:wasGeneratedBy"] == {"@id": activity.iri}
    assert out["schema:contentSize"] == 1024
    assert out["wf:digest"].startswith("sha256:")
    assert (f"<{made.iri}>", f"<{SCHEMA}contentUrl>", f"<{made.location}>") in _statements(made)


def test_a_succeeded_attempt_describes_the_collection_of_its_outputs() -> None:
    activity = task(point=2, outputs=("trace.npz", "dir/x.json"))
    collection = to_jsonld(activity)["@reverse"]["prov:wasGeneratedBy"]
    assert collection["@id"] == activity.iri + "/outputs" == activity.ref.outputs_iri
    assert "prov:Collection" in collection["@type"] and "prov:Entity" in collection["@type"]
    members = [ref["@id"] for ref in collection["prov:hadMember"]]
    assert members == [activity.ref.output_iri("trace.npz"), activity.ref.output_iri("dir/x.json")]
    step = collection["@reverse"]["prov:hadMember"]
    assert step["@id"] == campaign().iri + "/steps/simulate/outputs"

    statements = _statements(activity)
    outputs, step_outputs = f"<{activity.ref.outputs_iri}>", f"<{step['@id']}>"
    assert (outputs, f"<{PROV}wasGeneratedBy>", f"<{activity.iri}>") in statements
    member = f"<{PROV}hadMember>"
    assert {(s, o) for s, p, o in statements if p == member} == {
        (outputs, f"<{members[0]}>"),
        (outputs, f"<{members[1]}>"),
        (step_outputs, outputs),
    }
    # every statement, the step's membership included, is in the attempt's own graph
    assert {q.graph_name for q in to_quads(activity)} == {pyoxigraph.NamedNode(activity.iri)}


def test_only_a_succeeded_attempt_has_an_outputs_collection() -> None:
    empty = to_jsonld(task(point=0))["@reverse"]["prov:wasGeneratedBy"]
    assert "prov:hadMember" not in empty and "@reverse" in empty  # empty, yet a step member
    single = to_jsonld(task(point=None, outputs=("r.json",)))["@reverse"]["prov:wasGeneratedBy"]
    assert "@reverse" not in single  # a single step has no step collection
    for state in ("failed", "cancelled", "running"):
        activity = task(state=state, outputs=("trace.npz",))
        assert "@reverse" not in to_jsonld(activity)
        assert not any("/outputs" in str(q.subject) for q in to_quads(activity))


def test_campaign_is_an_activity_of_its_user_following_its_spec() -> None:
    document = to_jsonld(campaign())
    assert "prov:Activity" in document["@type"]
    assert document["prov:wasAssociatedWith"]["@id"] == BASE_NAMESPACE + "users/alice"
    plan = document["prov:used"]
    assert "prov:Plan" in plan["@type"] and '"amplitude"' in plan["schema:text"]
    assert document["prov:qualifiedAssociation"]["prov:hadPlan"] == {"@id": plan["@id"]}
    # every statement sits in the campaign's own named graph
    assert {q.graph_name for q in to_quads(campaign())} == {pyoxigraph.NamedNode(campaign().iri)}


def test_iris_are_deterministic_and_distinct() -> None:
    assert task().iri == task(state="failed").iri  # the same attempt, whatever its state
    assert task().iri != task(attempt=1).iri != task(point=2).iri
    assert task(point=None).iri.endswith("/tasks/simulate/attempts/0")
    assert output(task()).iri == output_iri(PROJECT, CAMPAIGN, "simulate", 1, 0, "trace.npz")
    assert task_iri(PROJECT, CAMPAIGN, "a b/c", None, 0).startswith(campaign_iri(PROJECT, CAMPAIGN))
    assert "a%20b%2Fc" in task_iri(PROJECT, CAMPAIGN, "a b/c", None, 0)
    pyoxigraph.NamedNode(output_iri(PROJECT, "ü id", "s", 0, 0, "dir/x y.json"))  # a valid IRI


@pytest.mark.parametrize(
    "change",
    [
        {"location": "relative/path"},
        {"digest": "deadbeef"},
        {"size": -1},
        {"generated_at": datetime(2025, 1, 1)},  # naive: ambiguous
    ],
)
def test_invalid_output_is_refused_when_built(change: dict[str, object]) -> None:
    fields = {
        "generated_by": TaskRef(PROJECT, CAMPAIGN, "s", 0, 0),
        "relpath": "x",
        "location": "s3://b/x",
        "size": 1,
        "digest": "sha256:00",
    }
    with pytest.raises(ValueError):
        OutputEntity(**{**fields, **change})  # type: ignore[arg-type]


def test_sparql_finds_outputs_of_a_step_for_one_parameter_value(tmp_path: Path) -> None:
    kg = EmbeddedKnowledgeGraph(tmp_path / "kg")
    kg.register(sweep())
    rows = kg.query(
        """SELECT ?url ?task WHERE {
             ?out prov:wasGeneratedBy ?task ; schema:contentUrl ?url .
             ?task wf:step "simulate" ;
                   wf:parameter [ schema:name "amplitude" ; schema:value ?amplitude ] .
             FILTER(?amplitude = 0.1)
           }"""
    )
    assert rows == [{"url": f"s3://results/{CAMPAIGN}/simulate/1/trace.npz", "task": task().iri}]

    # one activity per task, each with its files; features used simulate's trace
    per_task = kg.query(
        """SELECT ?step ?point (COUNT(?out) AS ?outputs) WHERE {
             ?task a prov:Activity ; wf:step ?step ; wf:point ?point .
             ?out a wf:Output ; prov:wasGeneratedBy ?task .
           } GROUP BY ?step ?point ORDER BY ?step ?point"""
    )
    assert per_task == [
        {"step": step, "point": str(point), "outputs": "1"}
        for step in ("features", "simulate")
        for point in range(3)
    ]
    assert kg.query(
        """ASK { ?f wf:step "features" ; prov:used/prov:hadMember ?trace .
                 ?trace a wf:Output ; prov:wasGeneratedBy [ wf:step "simulate" ] }"""
    )


# -------------------------------------------- to_quads: the graph JSON-LD gives, built directly
def _canonical(quads: list[pyoxigraph.Quad]) -> pyoxigraph.Dataset:
    dataset = pyoxigraph.Dataset(quads)
    dataset.canonicalize(pyoxigraph.CanonicalizationAlgorithm.UNSTABLE)  # blank nodes, if any
    return dataset


def _same_graph(item: Registrable) -> None:
    direct, parsed = to_quads(item), to_quads_via_jsonld(item)
    assert _canonical(direct) == _canonical(parsed), {str(q) for q in direct} ^ {
        str(q) for q in parsed
    }
    assert len(direct) == len(parsed)  # and no statement twice


PARAMETERS = {
    "count": 3,
    "amplitude": 0.1,
    "whole": 2.0,  # a whole float: JSON-LD makes it an xsd:integer
    "tiny": 2.5e-8,
    "huge": 1e22,  # an xsd:double
    "big": 10**25,
    "label": 'a "quoted"\nline \\ ü',
    "flag": True,
    "off": False,
    "list": [1, 2.5, "x", None],
    "nested": {"b": 1, "a": [True]},
    "missing": None,  # no schema:value at all
    "a b/c": "needs quoting in the parameter's IRI",
}


@pytest.mark.parametrize(
    "item",
    [
        campaign(),
        campaign(state="succeeded", ended_at=T0 + timedelta(hours=1), user="bob smith"),
        campaign(state=None),
        task(),
        task(parameters=PARAMETERS, used=("s3://results/x/in.h5", "file:///lustre/a%20b")),
        task(used=("prov:looks-compact", "wf:x", "http://example.org/y")),
        task(point=None, slurm_job_id=None, ended_at=None, parameters={}),
        task(outputs=("trace.npz", "dir/ü x.json", "/trace.npz", "log/")),
        task(point=None, outputs=("result.json",), used=(task().ref.outputs_iri,)),
        task(state="failed", outputs=("trace.npz",)),
        task(state="running"),
        task(step="a b/c", point=0, used=(task().ref.step_outputs_iri,)),
        output(task()),
        output(task(point=None), "nested/dir/ü.json", generated_at=None),
    ],
    ids=[
        "campaign",
        "campaign-ended",
        "campaign-no-state",
        "task",
        "task-typed-parameters",
        "task-compact-iris",
        "task-minimal",
        "task-outputs",
        "task-single-outputs",
        "task-failed-no-collection",
        "task-running-no-collection",
        "task-quoted-step-empty-collection",
        "output",
        "output-minimal",
    ],
)
def test_direct_quads_are_the_graph_jsonld_gives(item: Registrable) -> None:
    _same_graph(item)


def test_numbers_become_the_literals_jsonld_makes() -> None:
    """Integer or xsd:double, and the double's canonical form, as pyoxigraph's JSON-LD
    parser decides them from the JSON text."""
    rnd = random.Random(7)
    values: list[int | float] = [
        0, -0.0, 7, -3, 2**63, 10**20 - 1, 10**20, -(10**20), 10**21, 10**400,
        0.0, 2.0, 0.1, -0.25, 1e15, 1e16, 1e20, 1e21, 5e-324, 1.7976931348623157e308,
        123456.789, 1e-7, -1e-7, 12345678901234567890.0,
    ]  # fmt: skip
    values += [rnd.uniform(-1e6, 1e6) for _ in range(200)]
    values += [float(rnd.randint(-(10**25), 10**25)) for _ in range(200)]
    values += [rnd.randint(-(10**25), 10**25) for _ in range(200)]
    values += [math.ldexp(rnd.random(), rnd.randint(-1074, 1023)) for _ in range(200)]
    values += [round(rnd.uniform(-100, 100), rnd.randint(0, 6)) for _ in range(200)]
    _same_graph(task(parameters={f"v{i:04d}": value for i, value in enumerate(values)}))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_parameter_is_refused(value: float) -> None:
    """JSON has no NaN or infinity (the JSON-LD text does not even parse): ValueError,
    which the registrar treats as refused for good."""
    with pytest.raises(ValueError, match="finite"):
        to_quads(task(parameters={"x": value}))
