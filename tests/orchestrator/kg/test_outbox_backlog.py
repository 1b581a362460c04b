"""A large backlog of registrations never holds a campaign's end: stopping the registrar
sends for at most the drain it is given and leaves the rest in the outbox, and the next
registrar resumes where it stopped, oldest first, until the backlog is empty.

Real store (SQLite) and real embedded knowledge graph; the backlog is written to the outbox
as the engine writes it (`WriteBatch.outbox`), without running the tasks."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.store import WriteBatch
from orchestrator.store.tables import outbox
from tests.conftest import fast_engine
from tests.helpers import spec_doc, submit

BACKLOG = 5000


def _sent_in_order(service: Service) -> bool:
    """Every registration sent is older than every one still waiting."""
    with service.store.engine.connect() as conn:
        last_sent = conn.execute(
            select(func.max(outbox.c.id)).where(outbox.c.done_at.is_not(None))
        ).scalar()
        first_left = conn.execute(
            select(func.min(outbox.c.id)).where(outbox.c.done_at.is_(None))
        ).scalar()
    return last_sent is None or first_left is None or last_sent < first_left


def test_a_backlog_is_left_for_the_next_registrar_and_resumed(tmp_path: Path) -> None:
    service = Service(
        Settings(data_dir=tmp_path / "data", results_url=str(tmp_path / "r"), engine=fast_engine())
    )
    doc = spec_doc(
        "backlog",
        {"a": {"run": "tests.workloads:square", "foreach": True}},
        x={"range": [0, BACKLOG]},
    )
    cid = submit(service, doc)
    batch = WriteBatch(cid, campaign_state="succeeded")
    now = time.time()
    batch.outbox.extend(
        ("task", {"step": "a", "point": p, "attempt": 1, "state": "succeeded", "ended_at": now})
        for p in range(BACKLOG)
    )
    service.store.apply(batch)
    total = service.store.outbox_backlog(cid)
    assert total >= BACKLOG

    first = service.registrar()
    started = time.monotonic()
    first.close(drain=0.5)  # as a campaign's end does: a short drain, not the whole backlog
    assert time.monotonic() - started < 10.0
    left = service.store.outbox_backlog(cid)
    assert 0 < left < total
    assert _sent_in_order(service)

    second = service.registrar().start()  # the next run, resume or serve
    try:
        deadline = time.monotonic() + 120
        while service.store.outbox_backlog(cid) and time.monotonic() < deadline:
            second.wake()
            time.sleep(0.2)
    finally:
        second.close()
    assert service.store.outbox_backlog(cid) == 0
    count = (
        service.registrar()
        .graph()
        .query('SELECT (COUNT(DISTINCT ?t) AS ?n) WHERE { ?t a prov:Activity ; wf:step "a" }')
    )
    assert int(count[0]["n"]) == BACKLOG
    service.close()
