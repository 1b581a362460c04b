"""Idle teardown from the service's store: a project whose campaigns ended long ago loses its
cluster; one with a running campaign keeps it. AWS through moto's server; ParallelCluster
through the fake at our adapter seam (the library cannot run here)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import update

from cluster.provisioner import ClusterState, Provisioner
from cluster.provisioner.settings import ProvisionerSettings
from orchestrator.idle import IdleTeardown, teardown_idle_clusters
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.spec import parse_document
from orchestrator.store.tables import campaigns
from tests.helpers import spec_doc, wait_for

pytestmark = pytest.mark.aws


def _campaign(service: Service, project: str, state: str, finished_at: float | None) -> None:
    doc = spec_doc("idle", {"s": {"run": "tests.workloads:noop"}})
    cid = service.submit(parse_document(doc), project=project, import_paths=[])
    with service.store._tx() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == cid)
            .values(state=state, finished_at=finished_at, updated_at=finished_at or time.time())
        )


def test_idle_clusters_are_torn_down_busy_ones_kept(
    provisioner: Provisioner, pc_settings: ProvisionerSettings, tmp_path: Path
) -> None:
    service = Service(Settings(data_dir=tmp_path / "data"))
    for project in ("lab/p1", "lab/p2"):  # the test pool has two subnets
        provisioner.create(project, "small")
        assert provisioner.status(project).state is ClusterState.READY
    long_ago = time.time() - pc_settings.idle_timeout - 60
    _campaign(service, "lab/p1", "succeeded", long_ago)
    _campaign(service, "lab/p2", "succeeded", long_ago)
    _campaign(service, "lab/p2", "running", None)  # p2 is busy now
    activity = service.last_activity(time.time())
    assert set(activity) == {"lab/p1", "lab/p2"}
    # make every cluster look old enough to be idle
    for record in provisioner.records.all():
        record.created_at = "2000-01-01T00:00:00+00:00"
        provisioner.records.put(record)
    torn = teardown_idle_clusters(provisioner, service)
    assert torn == ["lab/p1"]
    assert provisioner.status("lab/p2").state is ClusterState.READY

    teardown = IdleTeardown(provisioner, service, interval=0.05).start()
    try:  # nothing more is idle: the loop runs and keeps p2
        time.sleep(0.3)
        assert provisioner.status("lab/p2").state is ClusterState.READY
    finally:
        teardown.close()
    assert wait_for(lambda: not teardown._thread.is_alive(), 10)
    service.close()
