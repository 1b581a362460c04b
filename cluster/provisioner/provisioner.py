"""The provisioner: a project's cluster, created on demand and torn down when idle, around
one back end (local SLURM, or ParallelCluster).

What it guarantees:
- create is idempotent: the project's cluster record is written first, with a conditional
  write, so concurrent or repeated creates get the same record (and one cluster);
- AWS back ends get one ED25519 key pair per cluster (private half in Secrets Manager: only
  its ARN is kept), a subnet claimed from the pool, and an ED25519 *host* key for the head
  node (installed by its start-up script; private half in Secrets Manager, which only that
  head node may read), so the service can verify the head node it connects to;
- the subnet and the keys are released only once the back end confirms the cluster is gone;
- every create and delete is recorded as an attempt, failures (with their reason) included,
  even those that happen before the back end knows the cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cluster.provisioner import bootstrap
from cluster.provisioner.base import Backend, BackendStatus, ClusterState, CreateRequest
from cluster.provisioner.config import cluster_name, key_pair_name, render_config, split_project
from cluster.provisioner.errors import ClusterNotFound, ProvisionerError
from cluster.provisioner.hostkeys import HostKeyStore
from cluster.provisioner.keys import KeyStore
from cluster.provisioner.records import Attempt, ClusterRecord, RecordStore, utcnow
from cluster.provisioner.settings import ProvisionerSettings
from cluster.provisioner.subnets import SubnetPool
from cluster.settings import SSHSettings

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
        host_keys: HostKeyStore | None = None,
        s3: Any = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        if backend.needs_aws_resources and None in (subnets, keys, host_keys, s3):
            raise ValueError(
                f"the {backend.kind} back end needs a subnet pool, key stores and an S3 client"
            )
        self.settings = settings
        self.backend = backend
        self.records = records
        self._subnets = subnets
        self._keys = keys
        self._host_keys = host_keys
        self._s3 = s3
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

    def ssh_settings(self, project: str) -> SSHSettings:
        """The service's `cluster.ssh` settings for the project's ready cluster (host keys
        verified: its known_hosts line is included); ProvisionerError when not ready."""
        return SSHSettings.model_validate(self.status(project).ssh_settings())

    def cluster_environment(self, project: str) -> dict[str, str]:
        """The `ORCHESTRATOR_CLUSTER__…` settings of a service instance for the project's
        ready cluster: SSH (host keys verified; the key by its secret's ARN, or its file),
        and its Lustre file system for the FSx exports. ProvisionerError when not ready."""
        record = self.status(project)
        env = {"ORCHESTRATOR_CLUSTER__KIND": "slurm"}
        for name, value in record.ssh_settings().items():
            env[f"ORCHESTRATOR_CLUSTER__SSH__{name.upper()}"] = str(value)
        if record.fsx_file_system_id:
            env["ORCHESTRATOR_CLUSTER__FSX__FILE_SYSTEM_ID"] = record.fsx_file_system_id
            env["ORCHESTRATOR_CLUSTER__FSX__MOUNT_DIR"] = self.settings.lustre.mount_dir
        return env

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
            self._prepare_host_key(record, tags)
        config = render_config(
            self.settings,
            record.project,
            record.tier,
            subnet_id=record.subnet_id or "subnet-local",
            key_name=record.key_name,
            host_key_policy_arn=record.host_key_policy_arn,
            no_lustre=record.no_lustre,
        )
        request = CreateRequest(record.name, record.project, config, key_secret_arn)
        return self.backend.create(request)

    def _prepare_host_key(self, record: ClusterRecord, tags: dict[str, str]) -> None:
        """The head node's host key (secret), the policy letting it read that secret, and
        the start-up script that installs it, uploaded where the configuration points."""
        assert self._host_keys is not None
        host_key = self._host_keys.ensure(record.name, tags)
        record.host_key_secret_arn = host_key.secret_arn
        record.host_public_key = host_key.public_key
        self._put(record)
        record.host_key_policy_arn = self._host_keys.grant(record.name, host_key.secret_arn, tags)
        self._put(record)
        script = bootstrap.host_key_script(
            self.settings, record.name, host_key.secret_arn, host_key.public_key
        )
        bootstrap.upload(self._s3, script, tags)

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
            connection = record.connection = status.connection.as_dict()
            if record.key_secret_arn and "key_file" not in connection:
                connection["key_secret_arn"] = record.key_secret_arn
            if record.host_public_key and not connection.get("known_hosts"):
                connection["known_hosts"] = known_hosts_line(
                    connection["host"], connection.get("port", 22), record.host_public_key
                )
            record.known_hosts = connection.get("known_hosts")
            record.fsx_file_system_id = status.details.get("fsx_file_system_id")
        self._put(record)

    def _release(self, record: ClusterRecord) -> None:
        """The cluster is confirmed gone: free its keys and subnet, then mark it deleted."""
        if record.key_name and self._keys is not None:
            self._keys.delete(record.key_name)
            record.key_name = record.key_secret_arn = None
            self._put(record)
        if self.backend.needs_aws_resources and self._host_keys is not None:
            # by name, not by the record's ARNs: a create cut short may have made them
            # without recording them
            self._host_keys.delete(record.name)
            bootstrap.remove(self._s3, self.settings, record.name)
            record.host_key_secret_arn = record.host_key_policy_arn = None
            record.host_public_key = record.known_hosts = None
            self._put(record)
        if record.subnet_id and self._subnets is not None:
            self._subnets.release(record.project, record.subnet_id)
        record.subnet_id = None
        record.state, record.reason, record.connection = ClusterState.DELETED, None, None
        record.known_hosts = None
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


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    """`HOST ssh-ed25519 AAAA...` (OpenSSH writes `[HOST]:PORT` for ports other than 22)."""
    key = " ".join(public_key.split()[:2])
    return f"{host} {key}" if int(port) == 22 else f"[{host}]:{port} {key}"
