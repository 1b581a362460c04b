"""The provisioner: a project's cluster, created on demand and torn down when idle, around
one back end (local SLURM, or ParallelCluster).

What it guarantees:
- create is idempotent: the project's cluster record is written first, with a conditional
  write, so concurrent or repeated creates get the same record (and one cluster);
- AWS back ends get one ED25519 key pair per cluster (private half in Secrets Manager: only
  its ARN is kept) and a subnet claimed from the pool;
- the subnet and the key are released only once the back end confirms the cluster is gone;
- every create and delete is recorded as an attempt, failures (with their reason) included,
  even those that happen before the back end knows the cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cluster.provisioner.base import Backend, BackendStatus, ClusterState, CreateRequest
from cluster.provisioner.config import cluster_name, key_pair_name, render_config, split_project
from cluster.provisioner.errors import ClusterNotFound, ProvisionerError
from cluster.provisioner.keys import KeyStore
from cluster.provisioner.records import Attempt, ClusterRecord, RecordStore, utcnow
from cluster.provisioner.settings import ProvisionerSettings
from cluster.provisioner.subnets import SubnetPool

logger = logging.getLogger(__name__)
LIVE = frozenset({ClusterState.PROVISIONING, ClusterState.READY, ClusterState.DELETING})


class Provisioner:
    def __init__(
        self,
        settings: ProvisionerSettings,
        backend: Backend,
        records: RecordStore,
        *,
        subnets: SubnetPool | None = None,
        keys: KeyStore | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        if backend.needs_aws_resources and (subnets is None or keys is None):
            raise ValueError(f"the {backend.kind} back end needs a subnet pool and a key store")
        self.settings = settings
        self.backend = backend
        self.records = records
        self._subnets = subnets
        self._keys = keys
        self._clock = clock

    # ------------------------------------------------------------------ operations
    def config(self, project: str, tier: str, *, no_lustre: bool = False) -> dict[str, Any]:
        return render_config(self.settings, project, tier, no_lustre=no_lustre)

    def create(
        self, project: str, tier: str = "small", *, no_lustre: bool = False
    ) -> ClusterRecord:
        """The project's cluster: the existing one, or a new one being created. A failure is
        recorded and returned as a `failed` record (delete it, then create again)."""
        render_config(self.settings, project, tier, no_lustre=no_lustre)  # validates early
        existing = self.records.get(project)
        if existing is not None and existing.state is not ClusterState.DELETED:
            return self._refresh(existing)
        now = self._now()
        record = ClusterRecord(
            project=project,
            name=cluster_name(project),
            kind=self.backend.kind,
            tier=tier,
            no_lustre=no_lustre,
            cost_centre=self.settings.cost_centre(project),
            state=ClusterState.PROVISIONING,
            created_at=now,
            updated_at=now,
        )
        if not self.records.begin(record):  # a concurrent create got there first
            return self._refresh(self._get(project))
        attempt = Attempt(project, "create", now, tier=tier)
        self.records.save_attempt(attempt)
        try:
            status = self._create(record)
        except ProvisionerError as exc:
            return self._failed(record, attempt, str(exc))
        except Exception as exc:
            self._failed(record, attempt, f"unexpected error: {type(exc).__name__}: {exc}")
            raise
        self._apply(record, status)
        self._finish(attempt, status.reason if status.state is ClusterState.FAILED else None)
        return record

    def status(self, project: str) -> ClusterRecord:
        return self._refresh(self._get(project))

    def delete(self, project: str) -> ClusterRecord:
        """Start deleting the cluster; its subnet and key are released once it is gone
        (by this call, or a later `status`/`delete`). Safe to repeat."""
        record = self._get(project)
        if record.state is ClusterState.DELETED:
            return record
        attempt = Attempt(project, "delete", self._now(), tier=record.tier)
        self.records.save_attempt(attempt)
        record.state, record.reason = ClusterState.DELETING, None
        self._put(record)
        try:
            status = self.backend.delete(record.name)
        except ProvisionerError as exc:
            record.reason = str(exc)
            self._put(record)
            self._finish(attempt, str(exc))
            raise
        if status.state is ClusterState.DELETED:
            self._release(record)
        elif status.state is ClusterState.FAILED:  # DELETE_FAILED: resources stay held
            record.state, record.reason = ClusterState.FAILED, status.reason
            self._put(record)
        self._finish(attempt, status.reason if status.state is ClusterState.FAILED else None)
        return record

    def attempts(self, project: str) -> list[Attempt]:
        return self.records.attempts(project)

    def teardown_idle(
        self, now: datetime, last_activity: Mapping[str, datetime | None]
    ) -> list[str]:
        """Delete every ready cluster without a campaign for `idle_timeout` seconds (counted
        from its project's last activity, or its creation); the projects torn down."""
        idle = timedelta(seconds=self.settings.idle_timeout)
        torn_down = []
        for record in self.records.all():
            if record.state is not ClusterState.READY:
                continue
            last = datetime.fromisoformat(record.created_at)
            activity = last_activity.get(record.project)
            if activity is not None and activity > last:
                last = activity
            if now - last >= idle:
                logger.info("tearing down the idle cluster of %s", record.project)
                self.delete(record.project)
                torn_down.append(record.project)
        return torn_down

    # ------------------------------------------------------------------ steps
    def _create(self, record: ClusterRecord) -> BackendStatus:
        key_secret_arn = None
        if self.backend.needs_aws_resources:
            assert self._subnets is not None and self._keys is not None
            record.subnet_id = self._subnets.claim(record.project)
            self._put(record)  # from now on, delete knows what to release
            vlab, name = split_project(record.project)
            tags = {"vlab": vlab, "project": name, "orchestrator-project": record.project}
            key = self._keys.ensure(key_pair_name(record.project), tags)
            record.key_name, record.key_secret_arn = key.key_name, key.secret_arn
            key_secret_arn = key.secret_arn
            self._put(record)
        config = render_config(
            self.settings,
            record.project,
            record.tier,
            subnet_id=record.subnet_id or "subnet-local",
            key_name=record.key_name,
            no_lustre=record.no_lustre,
        )
        request = CreateRequest(record.name, record.project, config, key_secret_arn)
        return self.backend.create(request)

    def _refresh(self, record: ClusterRecord) -> ClusterRecord:
        if record.state not in LIVE:
            return record
        status = self.backend.describe(record.name)
        if status.state is ClusterState.DELETED:
            if record.state is ClusterState.DELETING:
                self._release(record)
            else:  # gone without our delete: keep its resources until a delete confirms
                record.state = ClusterState.FAILED
                record.reason = f"the {self.backend.kind} back end no longer knows {record.name}"
                self._put(record)
            return record
        if record.state is ClusterState.DELETING and status.state is not ClusterState.FAILED:
            return record  # still going
        self._apply(record, status)
        return record

    def _apply(self, record: ClusterRecord, status: BackendStatus) -> None:
        record.state, record.reason = status.state, status.reason
        if status.connection is not None:
            record.connection = status.connection.as_dict()
            if record.key_secret_arn and "key_file" not in record.connection:
                record.connection["key_secret_arn"] = record.key_secret_arn
        self._put(record)

    def _release(self, record: ClusterRecord) -> None:
        """The cluster is confirmed gone: free its key and subnet, then mark it deleted."""
        if record.key_name and self._keys is not None:
            self._keys.delete(record.key_name)
            record.key_name = record.key_secret_arn = None
            self._put(record)
        if record.subnet_id and self._subnets is not None:
            self._subnets.release(record.project, record.subnet_id)
        record.subnet_id = None
        record.state, record.reason, record.connection = ClusterState.DELETED, None, None
        self._put(record)

    def _failed(self, record: ClusterRecord, attempt: Attempt, reason: str) -> ClusterRecord:
        logger.warning("creating the cluster of %s failed: %s", record.project, reason)
        record.state, record.reason = ClusterState.FAILED, reason
        self._put(record)
        self._finish(attempt, reason)
        return record

    def _finish(self, attempt: Attempt, failure: str | None) -> None:
        attempt.outcome = "failed" if failure else "succeeded"
        attempt.reason = failure
        attempt.finished_at = self._now()
        self.records.save_attempt(attempt)

    def _get(self, project: str) -> ClusterRecord:
        split_project(project)
        record = self.records.get(project)
        if record is None:
            raise ClusterNotFound(f"no cluster for {project}")
        return record

    def _put(self, record: ClusterRecord) -> None:
        record.updated_at = self._now()
        self.records.put(record)

    def _now(self) -> str:
        return self._clock().isoformat()
