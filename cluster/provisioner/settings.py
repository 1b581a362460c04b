"""Settings of the provisioner (to be nested into the service's settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class QueueSpec(BaseModel):
    """One SLURM queue (partition): its compute resources share these settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,24}$")
    instance_types: list[str] = Field(min_length=1)
    min_count: int = Field(default=0, ge=0)
    max_count: int = Field(ge=1)
    efa: bool = False  # Elastic Fabric Adapter, for tightly coupled MPI
    placement_group: bool = False
    capacity_type: Literal["ONDEMAND", "SPOT"] = "ONDEMAND"


class TierSpec(BaseModel):
    """A size of cluster a project can ask for: its head node and its queues."""

    model_config = ConfigDict(extra="forbid")

    head_node_instance_type: str = "c7i.xlarge"
    queues: list[QueueSpec] = Field(min_length=1)


def _default_tiers() -> dict[str, TierSpec]:
    debug = QueueSpec(name="debug", instance_types=["c7i.xlarge"], max_count=2)
    return {
        "small": TierSpec(
            queues=[
                debug,
                QueueSpec(name="prod-batch", instance_types=["c7i.4xlarge"], max_count=16),
            ]
        ),
        "large": TierSpec(
            head_node_instance_type="c7i.2xlarge",
            queues=[
                debug,
                QueueSpec(
                    name="prod-mpi",
                    instance_types=["hpc7a.96xlarge", "c7i.48xlarge"],
                    max_count=64,
                    efa=True,
                    placement_group=True,
                ),
                QueueSpec(
                    name="prod-batch",
                    instance_types=["c7i.8xlarge", "m7i.8xlarge"],
                    max_count=128,
                ),
                QueueSpec(
                    name="prod-spot",
                    instance_types=["c7i.8xlarge", "c6i.8xlarge"],
                    max_count=128,
                    capacity_type="SPOT",
                ),
            ],
        ),
    }


class AccountingSettings(BaseModel):
    """The SLURM accounting database (slurmdbd on a MySQL/MariaDB server, e.g. RDS)."""

    model_config = ConfigDict(extra="forbid")

    uri: str = "slurm-accounting.internal:3306"
    user_name: str = "slurm"
    password_secret_arn: str = (
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:slurm-accounting-password"
    )


class LustreSettings(BaseModel):
    """FSx for Lustre PERSISTENT_2 with two data repository associations."""

    model_config = ConfigDict(extra="forbid")

    storage_capacity: int = Field(default=1200, ge=1200)  # GiB; 1.2 TiB is the minimum
    per_unit_storage_throughput: Literal[125, 250, 500, 1000] = 250
    project_data_bucket: str = "s3://scientific-data"  # /project: import only
    scratch_bucket: str = "s3://scratch-data"  # /scratch: under vlab/project, import + export
    mount_dir: str = "/lustre"  # the associations appear as MOUNT_DIR/project, MOUNT_DIR/scratch

    @field_validator("project_data_bucket", "scratch_bucket")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if not value.startswith("s3://"):
            raise ValueError("must be an s3:// URL")
        return value.rstrip("/")


class LocalBackendSettings(BaseModel):
    """The `local` back end: hands out the SLURM of deploy/local-slurm."""

    model_config = ConfigDict(extra="forbid")

    # The `export K=V` settings of deploy/local-slurm/up; empty: taken from the environment,
    # else by running `up_command` (when set).
    exports: dict[str, str] = Field(default_factory=dict)
    up_command: list[str] = Field(default_factory=list)


class ProvisionerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "parallelcluster"] = "local"
    region: str = "us-east-1"
    # DynamoDB: the subnet pool (key `subnet_id`), the cluster records (key `project`) and
    # every provisioning attempt (key `project`, sort key `attempt`).
    subnet_table: str = "orchestrator-subnets"
    records_table: str = "orchestrator-clusters"
    attempts_table: str = "orchestrator-cluster-attempts"
    # The local back end keeps its records in a JSON file (default: in the data folder).
    records_file: Path | None = None
    tiers: dict[str, TierSpec] = Field(default_factory=_default_tiers)
    idle_timeout: float = Field(default=3600.0, gt=0)  # seconds without campaigns
    # how often `serve` looks for idle clusters (0: never; `orchestrator cluster
    # teardown-idle` from cron does the same)
    teardown_interval: float = Field(default=0.0, ge=0)
    # Who may reach the head node over SSH: the service's network and/or security group.
    service_cidr: str = "10.0.0.0/16"
    service_security_group: str | None = None
    os: Literal["alinux2", "alinux2023", "ubuntu2204", "rhel8", "rocky8"] = "alinux2023"
    default_cost_centre: str = "unassigned"
    cost_centres: dict[str, str] = Field(default_factory=dict)  # "vlab/project" -> centre
    key_secret_prefix: str = "orchestrator/cluster-keys/"
    # Where the head node's start-up script (it installs the cluster's SSH host key) is
    # uploaded, one object per cluster under this prefix; the bucket is the operator's.
    bootstrap_s3_url: str = "s3://orchestrator-cluster-bootstrap/on-node-start/"
    # The IAM path of the per-cluster policies that let a head node read its host key.
    host_key_policy_path: str = Field(default="/orchestrator/", pattern=r"^/([\w+=,.@-]+/)*$")
    accounting: AccountingSettings = Field(default_factory=AccountingSettings)
    lustre: LustreSettings = Field(default_factory=LustreSettings)
    # /home on EFS: an existing file system (kept across clusters), else one per cluster.
    home_efs_id: str | None = None
    local: LocalBackendSettings = Field(default_factory=LocalBackendSettings)

    @field_validator("bootstrap_s3_url")
    @classmethod
    def _bootstrap_url(cls, value: str) -> str:
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not value.startswith("s3://") or not bucket:
            raise ValueError("must be an s3://BUCKET/PREFIX/ URL")
        return value.rstrip("/") + "/"

    @field_validator("service_cidr")
    @classmethod
    def _not_open(cls, value: str) -> str:
        import ipaddress

        network = ipaddress.ip_network(value, strict=False)
        if network.prefixlen == 0:
            raise ValueError("must not be open to the whole internet (0.0.0.0/0)")
        return str(network)

    def cost_centre(self, project: str) -> str:
        return self.cost_centres.get(project, self.default_cost_centre)
