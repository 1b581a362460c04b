"""The project's compute on SLURM over SSH: a Dask scheduler in a process of its own here
(holding no secret; see cluster.scheduler), workers as SLURM jobs there (adaptive between the
settings' bounds, with the allow-listed environment only), and batch steps as SLURM jobs of
their own."""

from __future__ import annotations

import logging
import shlex
import socket
import uuid
from types import TracebackType
from typing import Any

from distributed import Client

from cluster.environment import EXTRA_NAMES_VARIABLE, shell_filter
from cluster.errors import ClusterConfigError, ClusterStartError, SSHError
from cluster.scheduler.certificates import ComputeCertificates, Role
from cluster.scheduler.pages import (
    Publisher,
    dashboard_pages,
    start_publishers,
    stop_publishers,
)
from cluster.scheduler.process import SchedulerProcess
from cluster.settings import ClusterSettings
from cluster.slurm.batch import SlurmBatch
from cluster.slurm.commands import SlurmCommands
from cluster.slurm.jobqueue import SSHSLURMCluster
from cluster.slurm.worker_starts import WorkerStarts
from cluster.ssh import SSHTransport

logger = logging.getLogger(__name__)


class SlurmCompute:
    kind = "slurm"

    def __init__(self, settings: ClusterSettings, transport: SSHTransport | None = None):
        self.settings = settings
        s = settings.slurm
        self.transport = transport or SSHTransport(settings.ssh)
        self._closed = False
        self.tls_dir: str | None = None
        self.pages = dashboard_pages()
        self.publishers: list[Publisher] = []
        try:
            self.work_dir = resolve_remote_dir(self.transport, s.work_dir)
        except SSHError as exc:
            self.transport.close()
            raise ClusterStartError(f"cannot reach the cluster: {exc}") from exc
        self.slurm = SlurmCommands(self.transport, s.partition)
        self.batch = SlurmBatch(self.slurm, settings.slurm, self.work_dir)
        try:
            self.cluster = SSHSLURMCluster(**self._cluster_options())
            if s.adaptive:
                self.cluster.adapt(minimum_jobs=s.minimum_jobs, maximum_jobs=s.maximum_jobs)
            elif s.minimum_jobs:
                self.cluster.scale(jobs=s.minimum_jobs)
            self.client = Client(self.cluster)
            if s.dashboard_address:
                self.publishers = start_publishers(self.pages, self.client)
        except Exception as exc:
            self.batch.close()
            self.transport.close()
            raise ClusterStartError(f"cannot start the Dask scheduler for SLURM: {exc}") from exc

    def _cluster_options(self) -> dict[str, Any]:
        s = self.settings.slurm
        per_process_cores = max(1, s.cores // s.processes)
        worker_args = ["--resources", f"cores={per_process_cores}"]
        if s.lifetime:
            worker_args += ["--lifetime", s.lifetime, "--lifetime-stagger", s.lifetime_stagger]
            worker_args += ["--lifetime-restart"]
        logs = f"{self.work_dir}/workers"
        self.transport.run_sync(["mkdir", "-p", logs])
        scheduler: dict[str, Any] = {"port": s.scheduler_port}
        if s.scheduler_host:
            scheduler["host"] = s.scheduler_host
        if s.dashboard_address:
            scheduler["dashboard_address"] = s.dashboard_address
        else:  # no dashboard; its HTTP server (health checks) still listens, on any port
            scheduler["dashboard_address"] = f"{s.scheduler_host or ''}:0"
            scheduler["dashboard"] = False
        if s.contact_address:
            scheduler["contact_address"] = contact_url(s.contact_address, s.scheduler_port, "tls")
            if not s.scheduler_port:
                scheduler["port"] = int(scheduler["contact_address"].rsplit(":", 1)[1])
        directives = [f"--output={logs}/%x-%j.out", f"--error={logs}/%x-%j.err"]
        directives += [f"--qos={s.qos}"] if s.qos else []
        directives += [f"--constraint={s.constraint}"] if s.constraint else []
        directives += list(s.job_directives)
        tls = self._tls_options()
        scheduler["certificates"] = tls.pop("certificates")
        scheduler["extra_env"] = list(self.settings.worker_env)
        scheduler["pages"] = self.pages
        scheduler["worker_saturation"] = s.worker_saturation
        return {
            **tls,
            "slurm": self.slurm,
            "poll_interval": s.poll_interval,
            "worker_logs": logs,
            "start_failure_limit": s.worker_start_failures,
            "cores": s.cores,
            "processes": s.processes,
            "memory": s.memory,
            "walltime": s.walltime,
            "queue": s.partition,
            "account": s.account,
            "python": s.python,
            "job_name": "orchestrator-worker",
            "job_extra_directives": directives,
            "job_script_prologue": self._prologue(),
            "worker_extra_args": worker_args,
            "scheduler_options": scheduler,
            "silence_logs": "warning",
        }

    def _prologue(self) -> list[str]:
        """The site's prologue, then nothing but the allow-listed environment for the worker
        (a job inherits the environment of the `sbatch` that submitted it)."""
        extra = list(self.settings.worker_env)
        lines = [*self.settings.slurm.prologue, shell_filter(extra)]
        if extra:
            lines.append(f"export {EXTRA_NAMES_VARIABLE}={shlex.quote(','.join(extra))}")
        return lines

    def _tls_options(self) -> dict[str, Any]:
        """Mutual TLS between the scheduler, the service's client and the workers, with a CA
        made for this start and a certificate per role: the scheduler runs only the client's
        requests to run code (cluster.scheduler.guard). The client key stays in this process;
        the workers' key goes to the cluster's work folder (readable by our user only)."""
        certificates = ComputeCertificates.create("slurm")
        self.tls_dir = f"{self.work_dir}/tls/{uuid.uuid4().hex}"
        return {
            "security": certificates.security(Role.CLIENT),
            "worker_security": certificates.security(Role.WORKER),
            "tls_dir": self.tls_dir,
            "scheduler_cls": SchedulerProcess,
            "certificates": certificates,
        }

    def task_resources(self, resources: dict[str, Any]) -> dict[str, float] | None:
        """Dask resources for a step's `resources`: a 4-core step lands only on a worker with 4
        cores. A step larger than any worker job is a configuration error, named."""
        cores = resources.get("cores")
        if not cores:
            return None
        per_worker = max(1, self.settings.slurm.cores // self.settings.slurm.processes)
        if cores > per_worker:
            raise ClusterConfigError(
                f"the step needs {cores} cores but SLURM worker jobs have {per_worker} per worker"
                " (raise cluster.slurm.cores, or make it a batch step)"
            )
        return {"cores": float(cores)}

    @property
    def scheduler_pid(self) -> int | None:
        scheduler = self.cluster.scheduler
        return scheduler.child.pid if isinstance(scheduler, SchedulerProcess) else None

    @property
    def worker_starts(self) -> WorkerStarts:
        """Worker jobs that failed before their worker started (the engine fails a campaign
        waiting on workers when they keep failing)."""
        return self.cluster.worker_starts

    @property
    def dashboard_link(self) -> str | None:
        try:
            return str(self.client.dashboard_link)
        except Exception:
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stop_publishers(self.publishers)
        for closer in (self.client.close, self.cluster.close, self.batch.close, self._forget_tls):
            try:
                closer()
            except Exception:  # keep closing the rest
                logger.warning("error while closing the SLURM compute", exc_info=True)
        self.transport.close()

    def _forget_tls(self) -> None:
        if self.tls_dir is not None:
            self.transport.run_sync(["rm", "-rf", "--", self.tls_dir], check=False)

    def __enter__(self) -> SlurmCompute:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve_remote_dir(transport: SSHTransport, path: str) -> str:
    """Create a folder on the head node; its absolute path (`~` expanded there)."""
    if path == "~" or path.startswith("~/"):
        expr = '"$HOME"' + (shlex.quote(path[1:]) if len(path) > 1 else "")
    else:
        expr = shlex.quote(path)
    result = transport.run_sync(f"mkdir -p {expr} && cd {expr} && pwd -P")
    return result.stdout.strip().splitlines()[-1]


def contact_url(address: str, port: int, protocol: str = "tcp") -> str:
    """`host`, `host:port` or `tcp://host:port` → `{protocol}://host:port` (a free port if
    none; the scheme follows `protocol`, so that TLS is not undone by a `tcp://` address)."""
    address = f"{protocol}://{address.split('://', 1)[-1]}"
    head, _, tail = address.rpartition(":")
    if head.endswith("/") or not tail.isdigit():  # no port given
        if not port:
            with socket.socket() as sock:
                sock.bind(("", 0))
                port = sock.getsockname()[1]
        return f"{address}:{port}"
    return address
