"""Settings of a project's compute (nested under the service's `cluster` settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from cluster.environment import check_names


class LocalSettings(BaseModel):
    """Dask on this machine (the embedded default): a scheduler process and worker processes."""

    model_config = ConfigDict(extra="forbid")

    n_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    processes: bool = True
    memory_limit: str = "auto"
    dashboard_address: str | None = "127.0.0.1:8787"
    # Folders task code must not read (the service's data folder by default): the workers see
    # them empty, where Linux allows unprivileged user namespaces.
    hidden_paths: list[Path] | None = None
    sandbox: bool = True
    # Tasks Dask sends a worker ahead, per thread (Dask's `worker-saturation`, 1.1 by
    # default). Unbounded here: the workers are all there from the start and the engine's
    # window is the queue, so a worker never waits for the scheduler between short tasks
    # (Dask's 1.1 left them idle a third of the time on 5000 no-op points). A chunk waiting
    # on a worker that dies runs elsewhere (engine/chunk_plugin.py).
    worker_saturation: float = Field(default=float("inf"), gt=0)


class SSHSettings(BaseModel):
    """How to reach the cluster's head node. Host keys are always verified."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    username: str | None = None
    # The private key: a file, or an AWS Secrets Manager secret (its ARN) holding the key.
    key_file: Path | None = None
    key_secret_arn: str | None = None
    key_passphrase: SecretStr | None = None
    # Known hosts: a path to a known_hosts file, or its content (lines). Required.
    known_hosts: str | None = None
    keepalive_interval: float = Field(default=15.0, gt=0)
    connect_timeout: float = Field(default=15.0, gt=0)
    command_timeout: float = Field(default=120.0, gt=0)
    max_concurrency: int = Field(default=8, ge=1)
    reconnect_attempts: int = Field(default=5, ge=0)
    reconnect_backoff: float = Field(default=0.5, gt=0)
    # Anything else asyncssh.connect accepts, passed through unchanged.
    connect_options: dict[str, Any] = Field(default_factory=dict)


class SlurmSettings(BaseModel):
    """Dask workers as SLURM jobs, and where batch steps run."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    # One worker job: its size and its walltime.
    cores: int = Field(default=1, ge=1)
    processes: int = Field(default=1, ge=1)
    memory: str = "2GiB"
    walltime: str = "01:00:00"
    # Adaptive scaling between these numbers of worker jobs (adaptive: false keeps
    # `minimum_jobs` running).
    adaptive: bool = True
    minimum_jobs: int = Field(default=0, ge=0)
    maximum_jobs: int = Field(default=4, ge=1)
    # Workers retire before the walltime ends (dask-worker --lifetime, --lifetime-stagger).
    lifetime: str | None = "55m"
    lifetime_stagger: str = "4m"
    # The Python on the cluster that has this package installed (workers run it).
    python: str = "python3"
    # Shell lines run before the worker or batch script (module load, venv activate...).
    prologue: list[str] = Field(default_factory=list)
    job_directives: list[str] = Field(default_factory=list)
    # A folder on the cluster (shared by the head node and the compute nodes) for job
    # scripts, logs and batch-step outputs.
    work_dir: str = "~/.orchestrator"
    # The address workers use to reach the scheduler in the service (host or host:port);
    # by default the scheduler's own address.
    contact_address: str | None = None
    # Mutual TLS between the scheduler, the service and the workers, always: a CA made at each
    # start, a certificate per role, the workers' key sent over SSH to WORK_DIR/tls/ (readable
    # by our user). The scheduler tells the service's client from a worker by it.
    tls: bool = True
    scheduler_host: str | None = None  # the interface the scheduler listens on
    scheduler_port: int = Field(default=0, ge=0, le=65535)
    # The scheduler's dashboard: on loopback unless set (e.g. ":8787" for every interface).
    dashboard_address: str | None = "127.0.0.1:8787"

    @field_validator("tls")
    @classmethod
    def _tls_required(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "cluster.slurm.tls cannot be turned off: without certificates the scheduler"
                " cannot tell the service's client from task code"
            )
        return value

    poll_interval: float = Field(default=5.0, gt=0)
    # Tasks Dask sends a worker ahead, per thread (Dask's `worker-saturation`): Dask's 1.1,
    # so that tasks wait in the scheduler for worker jobs that start later (adaptive).
    worker_saturation: float = Field(default=1.1, gt=0)
    # Worker jobs in a row that may fail before their worker starts; then a campaign waiting
    # on workers fails, with the last job's stderr in its reason.
    worker_start_failures: int = Field(default=3, ge=1)


class FsxSettings(BaseModel):
    """The cluster's FSx for Lustre file system, whose data repository associations export
    to S3. Campaigns whose results are a cluster path under `mount_dir` are exported with an
    FSx data repository task after each step or at their end (`export_after`)."""

    model_config = ConfigDict(extra="forbid")

    file_system_id: str | None = Field(default=None, pattern=r"^fs-[0-9a-f]{8,21}$")
    mount_dir: str = "/lustre"
    export_after: Literal["step", "campaign", "never"] = "campaign"
    poll_interval: float = Field(default=30.0, gt=0)
    timeout: float = Field(default=6 * 3600.0, gt=0)

    @model_validator(mode="after")
    def _absolute_mount(self) -> FsxSettings:
        if not self.mount_dir.startswith("/"):
            raise ValueError(f"cluster.fsx.mount_dir must be absolute, not {self.mount_dir!r}")
        return self


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "slurm"] = "local"
    local: LocalSettings = Field(default_factory=LocalSettings)
    ssh: SSHSettings = Field(default_factory=SSHSettings)
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    fsx: FsxSettings = Field(default_factory=FsxSettings)
    # Environment variables the Dask scheduler, the workers and `command` steps may get beyond
    # the built-in allow-list (cluster/environment.py): `NAME` or `PREFIX*`, e.g. a module
    # system's `MODULEPATH` or `LD_LIBRARY_PATH`. Never a secret: task code reads them.
    worker_env: list[str] = Field(default_factory=list)

    @field_validator("worker_env")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return check_names(value)

    @property
    def dashboard(self) -> bool:
        """Whether the scheduler of this compute serves a dashboard (pages are added to it)."""
        if self.kind == "slurm":
            return bool(self.slurm.dashboard_address)
        return self.local.dashboard_address is not None

    @model_validator(mode="after")
    def _slurm_needs_ssh(self) -> ClusterSettings:
        if self.kind == "slurm":
            missing = [
                f"cluster.ssh.{name}"
                for name in ("host", "known_hosts")
                if getattr(self.ssh, name) in (None, "")
            ]
            if self.ssh.key_file is None and self.ssh.key_secret_arn is None:
                missing.append("cluster.ssh.key_file (or cluster.ssh.key_secret_arn)")
            if missing:
                raise ValueError(
                    "cluster kind 'slurm' needs "
                    + ", ".join(missing)
                    + " (host keys are always verified)"
                )
        return self
