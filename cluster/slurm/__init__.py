"""SLURM reached over SSH: worker jobs (dask-jobqueue), batch jobs, job states."""

from cluster.slurm.batch import BatchJob, PollResult, SlurmBatch, TaskEnd
from cluster.slurm.commands import JobStatus, SlurmCommands
from cluster.slurm.states import TERMINAL, JobState, from_slurm

__all__ = [
    "TERMINAL",
    "BatchJob",
    "JobState",
    "JobStatus",
    "PollResult",
    "SlurmBatch",
    "SlurmCommands",
    "TaskEnd",
    "from_slurm",
]
