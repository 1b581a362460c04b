"""Counting worker jobs that fail before their worker starts (the real SLURM case is in
tests/orchestrator/engine/test_slurm_worker_starts.py)."""

from __future__ import annotations

from cluster.slurm.commands import JobStatus
from cluster.slurm.states import JobState
from cluster.slurm.worker_starts import WorkerStarts, joined_jobs

FAILED = JobStatus("41", JobState.FAILED, exit_code=127)


def test_failures_in_a_row_since_the_mark_fail_with_the_stderr_tail() -> None:
    starts = WorkerStarts(limit=3)
    before = starts.mark()
    for _ in range(2):
        assert starts.counts("job-0", FAILED)
        starts.failed(FAILED, "x" * 5000 + "\nbash: /bad/python: No such file or directory\n")
    assert starts.failure(before) is None
    starts.failed(FAILED, "bash: /bad/python: No such file or directory")
    reason = starts.failure(before)
    assert reason is not None and "3 worker jobs in a row" in reason
    assert "exit code 127" in reason and reason.endswith("No such file or directory")
    later = starts.mark()  # a run that starts now needs failures of its own
    assert starts.failure(later) is None


def test_a_worker_that_joins_resets_the_count_and_cancelled_jobs_do_not_count() -> None:
    starts = WorkerStarts(limit=2)
    before = starts.mark()
    starts.failed(FAILED, "")
    starts.joined(["job-1"])
    starts.failed(FAILED, "")
    assert starts.failure(before) is None
    assert not starts.counts("job-1", FAILED)  # its worker had joined: it ended later
    assert not starts.counts("job-2", JobStatus("42", JobState.CANCELLED))


def test_joined_jobs_match_workers_of_one_or_several_processes() -> None:
    info = {"workers": {"tcp://a:1": {"name": "SC-0"}, "tcp://b:1": {"name": "SC-1-0"}}}
    assert joined_jobs(["SC-0", "SC-1", "SC-2"], info) == ["SC-0", "SC-1"]
