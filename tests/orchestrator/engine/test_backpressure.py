"""A store slower than the workers: the engine admits new points only while the store keeps
up, so each write transaction stays small (a backlog would grow every transaction, until one
held the campaign's row past the lease's end and another runner took the campaign over)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster import LocalCompute
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.store import Store, WriteBatch
from tests.conftest import fast_engine
from tests.helpers import run, spec_doc

WINDOW = 40
MAX_UNWRITTEN = 50
PER_TASK = 0.004  # seconds the slowed store takes per task write: 250 writes/s


def test_a_slow_store_holds_new_points_back(
    tmp_path: Path, compute: LocalCompute, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = Store.apply

    def slow_apply(self: Store, batch: WriteBatch) -> None:
        sizes.append(len(batch.tasks))
        time.sleep(PER_TASK * len(batch.tasks))
        original(self, batch)

    monkeypatch.setattr(Store, "apply", slow_apply)
    engine = fast_engine().model_copy(
        update={"max_in_flight": WINDOW, "max_unwritten": MAX_UNWRITTEN}
    )
    settings = Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "results"), engine=engine
    )
    service = Service(settings)
    try:
        doc = spec_doc(
            "slow-store",
            {"sq": {"run": "tests.workloads:square", "foreach": True}},
            x={"range": [0, 1500]},
        )
        cid, state = run(service, compute, doc)
        assert state == "succeeded"
        assert service.status(cid)["counts"]["succeeded"] == 1500
    finally:
        service.close()
    # a batch holds at most the backlog allowed plus what was in flight when admission stopped
    assert max(sizes) <= MAX_UNWRITTEN + WINDOW, sorted(sizes)[-5:]
