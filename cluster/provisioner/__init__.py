"""The provisioner: a project's HPC cluster on demand (local SLURM, or AWS ParallelCluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.provisioner import _aws
from cluster.provisioner.base import Backend, BackendStatus, ClusterState, Connection
from cluster.provisioner.bootstrap import BootstrapScript, host_key_script
from cluster.provisioner.config import cluster_name, render_config, to_yaml
from cluster.provisioner.errors import (
    AwsError,
    BackendUnavailable,
    ClusterNotFound,
    ProvisionerConfigError,
    ProvisionerError,
    SubnetPoolExhausted,
)
from cluster.provisioner.hostkeys import HostKeyRef, HostKeyStore
from cluster.provisioner.keys import KeyStore
from cluster.provisioner.local import LocalBackend
from cluster.provisioner.parallelcluster import ParallelClusterBackend, PclusterAdapter
from cluster.provisioner.provisioner import Provisioner, known_hosts_line
from cluster.provisioner.records import Attempt, ClusterRecord, DynamoRecords, FileRecords
from cluster.provisioner.settings import ProvisionerSettings, QueueSpec, TierSpec
from cluster.provisioner.subnets import SubnetPool


def open_provisioner(
    settings: ProvisionerSettings,
    *,
    data_dir: Path | None = None,
    adapter: PclusterAdapter | None = None,
) -> Provisioner:
    """The provisioner the settings describe. `local` keeps its records in a JSON file
    (`records_file`, else in `data_dir`); `parallelcluster` in DynamoDB."""
    if settings.kind == "local":
        folder = data_dir or Path.home() / ".local" / "share" / "orchestrator"
        records_file = settings.records_file or folder / "clusters.json"
        backend = LocalBackend(settings.local, records_file.with_name("local-slurm-holders.json"))
        return Provisioner(settings, backend, FileRecords(records_file))
    dynamodb = _aws.client("dynamodb", settings.region)
    secrets = _aws.client("secretsmanager", settings.region)
    keys = KeyStore(_aws.client("ec2", settings.region), secrets, settings.key_secret_prefix)
    host_keys = HostKeyStore(
        secrets,
        _aws.client("iam", settings.region),
        settings.key_secret_prefix,
        settings.host_key_policy_path,
    )
    return Provisioner(
        settings,
        ParallelClusterBackend(settings.region, settings.os, adapter),
        DynamoRecords(dynamodb, settings.records_table, settings.attempts_table),
        subnets=SubnetPool(dynamodb, settings.subnet_table),
        keys=keys,
        host_keys=host_keys,
        s3=_aws.client("s3", settings.region),
    )


def create_tables(settings: ProvisionerSettings) -> None:
    """Create the provisioner's DynamoDB tables (on-demand billing) if missing."""
    client: Any = _aws.client("dynamodb", settings.region)
    tables = {
        settings.subnet_table: [("subnet_id", "HASH")],
        settings.records_table: [("project", "HASH")],
        settings.attempts_table: [("project", "HASH"), ("attempt", "RANGE")],
    }
    existing = set(client.list_tables()["TableNames"])
    for name, keys in tables.items():
        if name in existing:
            continue
        with _aws.translated(f"creating the DynamoDB table {name}"):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
            client.get_waiter("table_exists").wait(TableName=name)


__all__ = [
    "Attempt",
    "AwsError",
    "Backend",
    "BackendStatus",
    "BackendUnavailable",
    "BootstrapScript",
    "ClusterNotFound",
    "ClusterRecord",
    "ClusterState",
    "Connection",
    "DynamoRecords",
    "FileRecords",
    "HostKeyRef",
    "HostKeyStore",
    "KeyStore",
    "LocalBackend",
    "ParallelClusterBackend",
    "PclusterAdapter",
    "Provisioner",
    "ProvisionerConfigError",
    "ProvisionerError",
    "ProvisionerSettings",
    "QueueSpec",
    "SubnetPool",
    "SubnetPoolExhausted",
    "TierSpec",
    "cluster_name",
    "create_tables",
    "host_key_script",
    "known_hosts_line",
    "open_provisioner",
    "render_config",
    "to_yaml",
]
