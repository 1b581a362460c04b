"""Provenance through the store's outbox: a campaign's registrations reach the knowledge
graph, survive it being down (Nexus stand-in answering 503, or not listening at all in the
middle of a campaign), and are never duplicated."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from cluster import LocalCompute
from orchestrator.kg import (
    EmbeddedKnowledgeGraph,
    KnowledgeGraphSettings,
    NexusSettings,
    TaskRef,
)
from orchestrator.kg.settings import embedded_path
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.store.tables import outbox
from tests.conftest import fast_engine
from tests.helpers import run, spec_doc, submit, task_states, wait_for
from tests.orchestrator.kg.nexus_server import NexusServer

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


def nexus_service(tmp_path: Path, nexus: NexusServer) -> Service:
    """A service registering in the Nexus stand-in, one attempt per request."""
    return Service(
        Settings(
            data_dir=tmp_path / "data",
            results_url=str(tmp_path / "r"),
            engine=fast_engine(),
            kg=KnowledgeGraphSettings(
                kind="nexus",
                nexus=NexusSettings(base_url=nexus.url, token=SecretStr(TOKEN), attempts=1),
            ),
        )
    )


def test_the_knowledge_graph_down_then_back(tmp_path: Path, compute: LocalCompute) -> None:
    with NexusServer(TOKEN) as nexus:
        service = nexus_service(tmp_path, nexus)
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
    registrar.finish(drain=30)  # at once: `run` closes its compute meanwhile
    registrar.close()  # waits, with the drain `finish` asked for
    assert service.store.outbox_backlog(cid) == 0
    graph = EmbeddedKnowledgeGraph(embedded_path(settings.kg, settings.data_dir))
    assert graph.query(f'ASK {{ ?c schema:identifier "{cid}" ; wf:state "succeeded" }}') is True
    service.close()


def _outputs_in(nexus: NexusServer) -> list[str]:
    """The @ids of the output resources the stand-in holds."""
    return [k[2] for k, r in nexus.snapshot().items() if "wf:Output" in r["source"]["@type"]]


def _succeeded(service: Service, campaign_id: str) -> int:
    """How many `write` tasks of the campaign succeeded so far."""
    states = task_states(service, campaign_id, "write").values()
    return sum(state == "succeeded" for state in states)


def _refused(service: Service, campaign_id: str) -> bool:
    """Whether a registration of the campaign is waiting after a refused connection."""
    query = select(outbox.c.error).where(
        outbox.c.campaign_id == campaign_id, outbox.c.done_at.is_(None)
    )
    with service.store.engine.connect() as conn:
        return any("ConnectError" in (row.error or "") for row in conn.execute(query))


def _manifest_output_iris(service: Service, campaign_id: str) -> set[str]:
    """The IRIs the output files in the campaign's manifest must be registered under."""
    record = service.store.get_campaign(campaign_id)
    iris: set[str] = set()
    for entry in ResultsLocation(record.results_url).read_manifest():
        ref = TaskRef(record.project, campaign_id, entry["step"], entry["point"], entry["attempt"])
        iris.update(ref.output_iri(out["path"]) for out in entry["outputs"])
    return iris


def test_an_outage_mid_campaign_registers_every_output_once(
    tmp_path: Path, compute: LocalCompute
) -> None:
    """Nexus stops listening (connection refused) while tasks finish and comes back on the
    same port before the end: every output file of the manifest is a resource, created once,
    and the outbox drains. Points ≥ 2 are held (a gate file) until Nexus is down, so the
    outage surely falls in the middle of the campaign."""
    gate = tmp_path / "gate"
    doc = spec_doc(
        "outage",
        {
            "write": {
                "run": "tests.orchestrator.kg.workloads:gated_write",
                "foreach": True,
                "with": {"seconds": 0.2, "gate": str(gate), "after": 2},
            },
            "total": {"run": "tests.workloads:noop", "needs": ["write"]},
        },
        x={"range": [0, 16]},
    )
    with NexusServer(TOKEN) as nexus:
        service = nexus_service(tmp_path, nexus)
        registrar = service.registrar()
        registrar.backoff, registrar.interval = 0.05, 0.05
        registrar.start()
        cid = submit(service, doc)
        ended: list[str] = []
        runner = threading.Thread(target=lambda: ended.append(service.run(cid, compute)))
        runner.start()
        try:
            wait_for(lambda: _outputs_in(nexus), what="the first outputs registered")
            nexus.stop()  # mid-campaign: the port is closed
            assert runner.is_alive() and _succeeded(service, cid) < 16
            finished = _succeeded(service, cid)
            gate.touch()  # the held tasks finish while Nexus is down
            wait_for(lambda: _refused(service, cid), what="a registration refused")
            wait_for(lambda: _succeeded(service, cid) >= finished + 4, what="tasks finishing")
            down = len(_outputs_in(nexus))
            nexus.start()  # the same port again, before the campaign ends
        finally:
            gate.touch()
            runner.join(120)
        assert ended == ["succeeded"]
        wait_for(lambda: service.store.outbox_backlog(cid) == 0, what="the outbox drained")
        registrar.close()

    expected = _manifest_output_iris(service, cid)
    registered = _outputs_in(nexus)
    assert len(expected) == 32  # value.txt and task.log of 16 tasks
    assert len(registered) == len(set(registered)) == len(expected) > down
    assert set(registered) == expected
    assert set(nexus.created.values()) == {1}  # no @id created twice, outputs or others
    assert set(nexus.created) == set(nexus.resources)
    assert service.store.due_registrations(now=float("inf")) == []
    with service.store.engine.connect() as conn:  # drained by sending, none refused for good
        errors = conn.execute(select(outbox.c.error).where(outbox.c.campaign_id == cid))
        assert [row.error for row in errors if row.error] == []
    service.close()


def test_run_once_tells_how_many_registrations_it_took(
    tmp_path: Path, compute: LocalCompute
) -> None:
    """The registrar process rests after a batch that was not full (`last_batch`)."""
    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine()
    )
    service = Service(settings)
    cid, state = run(service, compute, _doc())
    waiting = service.store.outbox_backlog(cid)
    assert state == "succeeded" and waiting >= 6
    registrar = service.registrar()
    assert registrar.run_once() and registrar.last_batch == waiting
    assert not registrar.run_once() and registrar.last_batch == 0
    registrar.close()
    service.close()


def test_no_registrar_runs_when_provenance_is_off_and_nothing_is_left(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        results_url=str(tmp_path / "r"),
        kg=KnowledgeGraphSettings(enabled=False),
    )
    service = Service(settings)
    registrar = service.start_registrar()
    assert getattr(registrar, "_thread", None) is None and getattr(registrar, "pid", None) is None
    registrar.close(drain=10)  # nothing to send: returns at once
    service.close()
