"""Dask workers as SLURM jobs submitted over SSH: dask-jobqueue at its one shell seam.

`SSHSLURMJob` keeps dask-jobqueue's job script and replaces the two shell calls: the script
goes to `sbatch --parsable` on stdin over SSH, and `scancel` runs on the head node.
`SSHSLURMCluster` also watches its worker jobs with one state query per poll interval for
all of them: a job that ended (walltime, scancel from outside, node failure) is forgotten so
that the cluster's reconcile step submits a replacement.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from dask_jobqueue.core import JobQueueCluster
from dask_jobqueue.slurm import SLURMJob
from distributed.deploy.spec import ProcessInterface
from distributed.security import Security
from tornado.ioloop import PeriodicCallback

from cluster.errors import ClusterConfigError
from cluster.slurm.commands import SlurmCommands
from cluster.slurm.worker_starts import WorkerStarts, joined_jobs, stderr_tail

logger = logging.getLogger(__name__)


class SSHSLURMJob(SLURMJob):
    def __init__(self, *args: Any, slurm: SlurmCommands, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.slurm = slurm

    async def start(self) -> None:
        self.job_id = await self.slurm.submit(self.job_script())
        logger.info("worker job %s submitted for %s", self.job_id, self.name)
        await ProcessInterface.start(self)

    async def close(self) -> None:
        if self.job_id:
            await self.slurm.cancel([self.job_id])
        await ProcessInterface.close(self)


class SSHSLURMCluster(JobQueueCluster):
    job_cls = SSHSLURMJob

    def __init__(
        self,
        *args: Any,
        slurm: SlurmCommands,
        poll_interval: float = 5.0,
        tls_dir: str | None = None,
        worker_security: Security | None = None,
        worker_logs: str | None = None,
        start_failure_limit: int = 3,
        **kwargs: Any,
    ):
        self.slurm = slurm
        self.poll_interval = poll_interval
        self.worker_logs = worker_logs  # the jobs' --error files: {worker_logs}/%x-%j.err
        self.worker_starts = WorkerStarts(start_failure_limit)
        self.polls = 0
        self.tls_dir = tls_dir
        # the cluster's own `security` is the service's client's; workers have theirs
        self.worker_security = worker_security
        super().__init__(*args, slurm=slurm, **kwargs)

    def _get_worker_security(self, security: Security | None) -> Security | None:
        """The workers' TLS key and certificates, sent to the cluster over SSH (readable by
        our user only, in `tls_dir` on the shared work folder); dask-jobqueue would write
        them to a local folder, which the compute nodes do not see."""
        security = self.worker_security or security
        if security is None:
            return None
        inline = {
            key: value
            for key, value in security.get_tls_config_for_role("worker").items()
            if value is not None and "\n" in value
        }
        if not inline:
            return security  # files that already exist on the cluster
        if self.tls_dir is None:
            raise ClusterConfigError("TLS for the workers needs a folder on the cluster (tls_dir)")
        self.slurm.transport.put_files_sync(
            self.tls_dir,
            {f"{key}.pem": value.encode() for key, value in inline.items()},
            private=True,
        )
        security = copy.copy(security)
        for key in inline:
            field = "tls_ca_file" if key == "ca_file" else f"tls_worker_{key}"
            setattr(security, field, f"{self.tls_dir}/{key}.pem")
        return security

    async def _start(self) -> None:
        await super()._start()
        self._job_watch = PeriodicCallback(self._watch_jobs, self.poll_interval * 1000)
        self.periodic_callbacks["slurm-job-watch"] = self._job_watch
        self._job_watch.start()

    async def _watch_jobs(self) -> None:
        jobs = {
            name: job
            for name, job in self.workers.items()
            if isinstance(job, SSHSLURMJob) and job.job_id
        }
        if not jobs:
            return
        self.worker_starts.joined(joined_jobs(jobs, self.scheduler_info))
        self.polls += 1
        try:
            states = await self.slurm.states(str(job.job_id) for job in jobs.values())
        except Exception as exc:  # the head node may be briefly unreachable: try next time
            logger.warning("could not poll worker jobs: %s", exc)
            return
        ended = [
            name
            for name, job in jobs.items()
            if (status := states.get(str(job.job_id))) is not None and status.state.terminal
        ]
        for name in ended:
            if self.workers.get(name) is not jobs[name]:
                continue  # closed or replaced while we polled (scale down, adapt)
            job = self.workers.pop(name)
            status = states[str(job.job_id)]
            if self.worker_starts.counts(name, status):
                self.worker_starts.failed(status, await self._stderr(job))
            elif self.worker_starts.had_joined(name):
                self.worker_starts.lost(status)
            logger.warning(
                "worker job %s ended (%s: %s); a replacement will be submitted",
                job.job_id,
                status.state.value,
                status.reason,
            )
        if ended:
            await self._correct_state()

    async def _stderr(self, job: SSHSLURMJob) -> str:
        if self.worker_logs is None:
            return ""
        path = f"{self.worker_logs}/{job.job_name}-{job.job_id}.err"
        return await stderr_tail(self.slurm, path)
