"""The embedded knowledge graph: a real pyoxigraph store on disk, and `orchestrator kg query`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyoxigraph
import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.kg import (
    EmbeddedKnowledgeGraph,
    KnowledgeGraph,
    KnowledgeGraphSettings,
    KnowledgeGraphUnavailable,
    QueryError,
    Registrable,
    open_knowledge_graph,
)
from tests.orchestrator.kg.sample import campaign, output, sweep, task

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <%s> { ?s ?p ?o } }"
STATES = "SELECT ?state WHERE { <%s> wf:state ?state }"


def _count(kg: EmbeddedKnowledgeGraph, graph: str) -> int:
    rows = kg.query(COUNT % graph)
    assert isinstance(rows, list)
    return int(rows[0]["n"])


def test_registering_twice_keeps_one_copy(tmp_path: Path) -> None:
    kg = open_knowledge_graph(KnowledgeGraphSettings(), tmp_path)
    assert isinstance(kg, EmbeddedKnowledgeGraph) and isinstance(kg, KnowledgeGraph)
    assert kg.path == tmp_path / "kg"
    activity = task()
    kg.register([campaign(), activity, output(activity)])
    before = _count(kg, activity.iri)
    kg.register([campaign(), activity, output(activity)])
    kg.register([activity])
    assert before > 0 and _count(kg, activity.iri) == before
    assert kg.query("SELECT ?t WHERE { ?t a wf:Task }") == [{"t": activity.iri}]


def test_a_changed_item_replaces_the_old_statements(tmp_path: Path) -> None:
    kg = EmbeddedKnowledgeGraph(tmp_path / "kg")
    kg.register([task(state="running", slurm_job_id="1")])
    kg.register([task(state="succeeded", slurm_job_id=None)])
    assert kg.query(STATES % task().iri) == [{"state": "succeeded"}]
    assert kg.query("ASK { ?t wf:slurmJobId ?job }") is False
    # in one batch, the later registration of an item wins
    kg.register([task(state="failed"), task(state="cancelled")])
    assert kg.query(STATES % task().iri) == [{"state": "cancelled"}]


def test_persisted_across_reopening(tmp_path: Path) -> None:
    first = EmbeddedKnowledgeGraph(tmp_path / "kg")
    first.register(sweep())
    first.close()
    again = EmbeddedKnowledgeGraph(tmp_path / "kg")
    entities = again.query("SELECT ?o WHERE { ?o a prov:Entity ; schema:contentUrl ?u }")
    assert isinstance(entities, list) and len(entities) == 6
    with pytest.raises(QueryError, match="1:1") as caught:
        again.query("SELEC ?x WHERE { ?x ?y ?z }")
    # the error is kept, yet the store it came from is closed and writable again
    assert caught.value is not None
    EmbeddedKnowledgeGraph(tmp_path / "kg", lock_timeout=0.2).register([campaign()])


def test_another_process_holding_the_store(tmp_path: Path) -> None:
    """RocksDB lets one process write: a writer waits (then reports 'unavailable, retry
    later'), and a query reads a read-only snapshot instead of waiting."""
    path = tmp_path / "kg"
    EmbeddedKnowledgeGraph(path).register([campaign()])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        kg = EmbeddedKnowledgeGraph(path, lock_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(KnowledgeGraphUnavailable, match="another process"):
            kg.register([task()])
        assert time.monotonic() - started >= 0.3
        assert kg.query("SELECT ?c WHERE { ?c a wf:Campaign }") == [{"c": campaign().iri}]
    finally:
        holder.terminate()
        holder.wait(timeout=10)
    EmbeddedKnowledgeGraph(path).register([task()])  # released: writes again


HOLD = """
import sys, time, pyoxigraph
store = pyoxigraph.Store(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_cli_query_table_json_and_bad_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path))
    EmbeddedKnowledgeGraph(tmp_path / "kg").register(sweep())
    query = (
        'SELECT ?point ?url WHERE { ?task wf:step "simulate" ; wf:point ?point . '
        "?out prov:wasGeneratedBy ?task ; schema:contentUrl ?url } ORDER BY ?point"
    )
    runner = CliRunner()

    table = runner.invoke(cli, ["kg", "query", query])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["point", "url"]
    assert lines[2].split() == ["1", "s3://results/c-0001/simulate/1/trace.npz"]

    as_json = runner.invoke(cli, ["kg", "query", query, "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [row["point"] for row in rows] == ["0", "1", "2"]

    ask = runner.invoke(cli, ["kg", "query", "ASK { ?c a wf:Campaign }", "--json"])
    assert ask.exit_code == 0 and json.loads(ask.stdout) is True

    bad = runner.invoke(cli, ["kg", "query", "SELECT ?x WHERE { ?x"])
    assert bad.exit_code == 2
    assert "invalid SPARQL query" in bad.stderr and "1:" in bad.stderr


def _dump(path: Path) -> set[str]:
    """Every statement in the store, with its graph (N-Quads lines)."""
    store = pyoxigraph.Store.read_only(str(path))
    try:
        return {str(quad) for quad in store}
    finally:
        del store


@pytest.mark.parametrize("bulk_load", [True, False], ids=["bulk_extend", "extend"])
def test_registering_stores_what_the_jsonld_update_stored(tmp_path: Path, bulk_load: bool) -> None:
    """The direct quads and `bulk_extend`/`extend` give the store exactly the statements the
    old path gave (JSON-LD parsed by pyoxigraph, one SPARQL update), through new items,
    re-registered ones and a batch that mixes both."""
    items = sweep()
    changed = task(point=1, amplitude=0.1, state="failed", slurm_job_id=None)
    batches: list[list[Registrable]] = [
        items[:3],
        [*items[3:], campaign(state="succeeded")],  # new items and a re-registered one
        [changed, output(changed, "new.json"), task(point=9), changed],  # the last one wins
    ]
    new = EmbeddedKnowledgeGraph(tmp_path / "new", bulk_load=bulk_load)
    old = EmbeddedKnowledgeGraph(tmp_path / "old")
    for batch in batches:
        new.register(batch)
        old.register_via_sparql(batch)
        assert _dump(new.path) == _dump(old.path)
    assert new.query(STATES % changed.iri) == [{"state": "failed"}]
    assert new.query("ASK { ?t wf:slurmJobId ?job ; wf:point 1 ; wf:step 'simulate' }") is False


def test_an_invalid_item_leaves_the_batch_unwritten(tmp_path: Path) -> None:
    kg = EmbeddedKnowledgeGraph(tmp_path / "kg")
    kg.register([campaign()])
    with pytest.raises(ValueError, match="finite"):
        kg.register([campaign(state="succeeded"), task(), task(parameters={"x": math.nan})])
    assert kg.query(STATES % campaign().iri) == [{"state": "running"}]
    assert kg.query("ASK { ?t a wf:Task }") is False


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk_extend", "extend"])
def test_a_failed_write_leaves_no_item_half_registered(tmp_path: Path, bulk: bool) -> None:
    """Adding the new items fails (here: a bad quad among them): the re-registered item
    was replaced as a whole, and none of the new ones is in the store, even in part."""
    from orchestrator.kg.embedded import _graphs, _store_graphs

    store = pyoxigraph.Store(str(tmp_path / "kg"))
    _store_graphs(store, _graphs([campaign()]), bulk)
    first, second = task(point=1), task(point=2)
    graphs = _graphs([campaign(state="succeeded"), first, output(first), second])
    graphs[-1][1].insert(3, "not a quad")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _store_graphs(store, graphs, bulk)
    assert {str(graph) for graph in store.named_graphs()} == {f"<{campaign().iri}>"}
    state = pyoxigraph.NamedNode("https://openbluebrain.org/workflow/vocab/state")
    assert [str(q.object) for q in store.quads_for_pattern(None, state, None)] == ['"succeeded"']


def test_new_items_are_bulk_loaded_only_by_the_only_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bulk_extend` holds the GIL: only a process's sole Python thread uses it."""
    import orchestrator.kg.embedded as embedded

    seen: list[bool] = []
    real = embedded._store_graphs

    def spy(store: pyoxigraph.Store, graphs: list[embedded.Graph], bulk: bool) -> None:
        seen.append(bulk)
        real(store, graphs, bulk)

    monkeypatch.setattr(embedded, "_store_graphs", spy)
    kg = EmbeddedKnowledgeGraph(tmp_path / "kg")
    worker = threading.Thread(target=kg.register, args=([task(point=1)],))
    worker.start()
    worker.join()
    EmbeddedKnowledgeGraph(tmp_path / "kg", bulk_load=True).register([task(point=2)])
    EmbeddedKnowledgeGraph(tmp_path / "kg", bulk_load=False).register([task(point=3)])
    assert seen == [False, True, False]
    rows = kg.query("SELECT ?p WHERE { ?t wf:point ?p } ORDER BY ?p")
    assert rows == [{"p": "1"}, {"p": "2"}, {"p": "3"}]
