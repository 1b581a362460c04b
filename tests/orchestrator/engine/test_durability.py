"""Nothing is reported as finished before it is committed to the store."""

from __future__ import annotations

from orchestrator.engine import Engine
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.helpers import spec_doc


def test_progress_never_runs_ahead_of_the_store(service: Service, compute):  # type: ignore[no-untyped-def]
    doc = spec_doc(
        "durable", {"sq": {"run": "tests.workloads:square", "foreach": True}}, x={"range": [0, 200]}
    )
    cid = service.submit(parse_document(doc))
    observed: list[tuple[int, int]] = []

    def progress(snapshot: dict[str, dict[str, int]]) -> None:
        reported = snapshot["sq"].get("succeeded", 0)
        stored = service.store.task_counts(cid).get("sq", {}).get("succeeded", 0)
        observed.append((reported, stored))

    engine = Engine(service.store, compute.client, cid, service.engine_config(), progress)
    assert engine.run() == "succeeded"
    assert observed and observed[-1][0] == 200
    assert all(reported <= stored for reported, stored in observed), observed
