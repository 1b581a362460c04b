"""The embedded knowledge graph: a real pyoxigraph store on disk, and `orchestrator kg query`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.kg import (
    EmbeddedKnowledgeGraph,
    KnowledgeGraph,
    KnowledgeGraphSettings,
    KnowledgeGraphUnavailable,
    QueryError,
    open_knowledge_graph,
)
from tests.kg.sample import campaign, output, sweep, task

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
