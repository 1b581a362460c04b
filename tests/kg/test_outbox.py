"""Provenance through the store's outbox: a campaign's registrations reach the knowledge
graph, survive it being down (Nexus stand-in answering 503), and are never duplicated."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from cluster import LocalCompute
from orchestrator.kg import EmbeddedKnowledgeGraph, KnowledgeGraphSettings, NexusSettings
from orchestrator.kg.settings import embedded_path
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.conftest import fast_engine
from tests.helpers import run, spec_doc
from tests.kg.nexus_server import NexusServer

TOKEN = "outbox-token"


def _doc() -> dict:
    return spec_doc(
        "prov",
        {
            "write": {"run": "tests.workloads:write_file", "foreach": True},
            "total": {"run": "tests.workloads:noop", "needs": ["write"]},
        },
        x=[1, 2, 3],
    )


def test_a_campaign_is_registered_with_its_tasks_and_outputs(
    tmp_path: Path, compute: LocalCompute
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine()
    )
    service = Service(settings)
    registrar = service.registrar().start()
    try:
        cid, state = run(service, compute, _doc())
        assert state == "succeeded"
    finally:
        registrar.close(drain=30)
    assert service.store.outbox_backlog() == 0
    graph = EmbeddedKnowledgeGraph(embedded_path(settings.kg, settings.data_dir))
    rows = graph.query(
        """SELECT ?step (COUNT(DISTINCT ?task) AS ?n) WHERE {
             ?task a prov:Activity ; wf:step ?step } GROUP BY ?step ORDER BY ?step"""
    )
    assert [(r["step"], r["n"]) for r in rows] == [("total", "1"), ("write", "3")]
    outputs = graph.query(
        """SELECT ?url WHERE { ?out prov:wasGeneratedBy ?task ; schema:contentUrl ?url .
              ?task wf:step "write" ;
                    wf:parameter [ schema:name "x" ; schema:value 2 ] }"""
    )
    found = sorted(r["url"].rsplit("/", 3)[1:] for r in outputs)
    assert ["write", "000001", "value.txt"] in found and ["write", "000001", "task.log"] in found
    state = graph.query(f'SELECT ?s WHERE {{ ?c schema:identifier "{cid}" ; wf:state ?s }}')
    assert {r["s"] for r in state} == {"succeeded"}
    service.close()


def test_the_knowledge_graph_down_then_back(tmp_path: Path, compute: LocalCompute) -> None:
    with NexusServer(TOKEN) as nexus:
        settings = Settings(
            data_dir=tmp_path / "data",
            results_url=str(tmp_path / "r"),
            engine=fast_engine(),
            kg=KnowledgeGraphSettings(
                kind="nexus",
                nexus=NexusSettings(base_url=nexus.url, token=SecretStr(TOKEN), attempts=1),
            ),
        )
        service = Service(settings)
        registrar = service.registrar()
        registrar.backoff = 0.05
        nexus.fail_with = 503
        registrar.start()
        cid, state = run(service, compute, _doc())
        assert state == "succeeded"  # campaigns complete while the graph is down
        backlog = service.store.outbox_backlog(cid)
        assert backlog >= 6  # campaign (running, succeeded) and 4 tasks, kept
        assert not nexus.resources
        nexus.fail_with = None
        registrar.close(drain=30)
        assert service.store.outbox_backlog(cid) == 0
        created = [r for r in nexus.resources]
        activities = [k for k in created if "/tasks/" in k[2] and "/outputs/" not in k[2]]
        assert len(activities) == 4 and len(set(created)) == len(created)
        assert any("/outputs/" in k[2] for k in created)
        assert service.store.due_registrations(now=float("inf")) == []  # all done, once
        service.close()


def test_the_registrar_process(tmp_path: Path, compute: LocalCompute) -> None:
    """The default: a low-priority process of its own, stopped with a drain."""
    from orchestrator.kg.process import RegistrarProcess

    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine()
    )
    service = Service(settings)
    cid, state = run(service, compute, _doc())
    assert state == "succeeded" and service.store.outbox_backlog(cid) >= 6
    registrar = RegistrarProcess(settings).start()
    assert registrar.pid is not None and registrar.pid != os.getpid()
    registrar.close(drain=30)
    assert service.store.outbox_backlog(cid) == 0
    graph = EmbeddedKnowledgeGraph(embedded_path(settings.kg, settings.data_dir))
    assert graph.query(f'ASK {{ ?c schema:identifier "{cid}" ; wf:state "succeeded" }}') is True
    service.close()
