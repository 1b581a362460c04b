"""Pure parts of the SLURM support: state mapping, parsing `sacct`/`squeue`/`sbatch` output,
the driver script, settings; the engine's side of batch steps is in
tests/orchestrator/engine/test_batch.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cluster.errors import SlurmError
from cluster.settings import ClusterSettings
from cluster.slurm.batch import BatchJob, driver_script
from cluster.slurm.commands import (
    parse_job_id,
    parse_max_array_size,
    parse_refused,
    parse_sacct,
    parse_squeue,
)
from cluster.slurm.states import TERMINAL, JobState, from_slurm


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("PENDING", JobState.PENDING),
        ("RUNNING", JobState.RUNNING),
        ("COMPLETING", JobState.RUNNING),
        ("COMPLETED", JobState.COMPLETED),
        ("FAILED", JobState.FAILED),
        ("TIMEOUT", JobState.TIMEOUT),
        ("OUT_OF_MEMORY", JobState.OUT_OF_MEMORY),
        ("OUT_OF_ME+", JobState.OUT_OF_MEMORY),
        ("NODE_FAIL", JobState.NODE_FAIL),
        ("PREEMPTED", JobState.PREEMPTED),
        ("CANCELLED by 0", JobState.CANCELLED),
        ("cancelled+", JobState.CANCELLED),
        ("BOOT_FAIL", JobState.NODE_FAIL),
        ("REQUEUED", JobState.PENDING),
        ("SOMETHING_NEW", JobState.UNKNOWN),
        ("", JobState.UNKNOWN),
    ],
)
def test_slurm_states_map_to_one_enum(text: str, state: JobState) -> None:
    assert from_slurm(text) is state


def test_terminal_set() -> None:
    assert JobState.COMPLETED in TERMINAL and JobState.NODE_FAIL in TERMINAL
    assert not JobState.PENDING.terminal and not JobState.RUNNING.terminal
    assert not JobState.UNKNOWN.terminal


def test_sacct_output_with_array_tasks_and_a_pending_range() -> None:
    out = (
        "41_0|COMPLETED|0:0|None\n"
        "41_1|FAILED|3:0|NonZeroExitCode\n"
        "41_[2-4,7%2]|PENDING|0:0|JobArrayTaskLimit\n"
        "42|CANCELLED by 0|0:15|None\n"
    )
    found = parse_sacct(out)
    assert found["41_0"].state is JobState.COMPLETED and found["41_0"].exit_code == 0
    assert found["41_1"].exit_code == 3 and found["41_1"].reason == "NonZeroExitCode"
    assert [j for j in found if found[j].state is JobState.PENDING] == [
        "41_2",
        "41_3",
        "41_4",
        "41_7",
    ]
    assert found["42"].state is JobState.CANCELLED


def test_squeue_output() -> None:
    found = parse_squeue("7_1|RUNNING|None\n8|PENDING|Resources\n")
    assert found["7_1"].state is JobState.RUNNING
    assert found["8"].reason == "Resources"


def test_job_id_from_sbatch_parsable() -> None:
    assert parse_job_id("1234\n") == "1234"
    assert parse_job_id("1234;cluster-a\n") == "1234"
    with pytest.raises(SlurmError, match="no job id"):
        parse_job_id("sbatch: warning\n")


def test_driver_script_is_one_array_with_a_throttle() -> None:
    job = BatchJob(
        name="orch-x",
        scripts=["a", "b", "c"],
        output_dirs=["/o/0", "/o/1", "/o/2"],
        options=["--nodes=2", "--ntasks=4"],
        array_parallelism=2,
        prologue=["module load neuron"],
    )
    script = driver_script(job, "/w/batch/orch-x", "debug")
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-2%2" in script
    assert "#SBATCH --partition=debug" in script
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks=4" in script
    assert "#SBATCH --output=/w/batch/orch-x/%a.out" in script
    assert script.index("module load neuron") < script.index("task-")
    # the step's own partition wins over the cluster's default
    own = BatchJob("n", ["a"], ["/o"], options=["--partition=long"])
    assert "--partition=debug" not in driver_script(own, "/w", "debug")


def test_slurm_settings_name_what_is_missing() -> None:
    with pytest.raises(ValidationError) as info:
        ClusterSettings.model_validate({"kind": "slurm", "ssh": {"host": "head"}})
    message = str(info.value)
    assert "cluster.ssh.known_hosts" in message and "cluster.ssh.key_file" in message


def test_contact_url_follows_the_protocol() -> None:
    from cluster.slurm.compute import contact_url

    assert contact_url("10.0.0.5", 8786) == "tcp://10.0.0.5:8786"
    assert contact_url("10.0.0.5:9000", 8786, "tls") == "tls://10.0.0.5:9000"
    assert contact_url("tcp://10.0.0.5:9000", 0, "tls") == "tls://10.0.0.5:9000"


def test_the_arrays_scontrol_refused_are_parsed() -> None:
    out = "123|slurm_update error: Invalid job id specified \n\n77|Job has already finished \n"
    assert parse_refused(out) == {
        "123": "slurm_update error: Invalid job id specified",
        "77": "Job has already finished",
    }
    assert parse_refused("") == {} and parse_refused("garbage\nx|y\n") == {}


def test_max_array_size_is_read_from_scontrol_show_config() -> None:
    config = (
        "Configuration data as of 2026-11-29T21:40:00\n"
        "AccountingStorageBackupHost = (null)\n"
        "MaxArraySize            = 1001\n"
        "MaxJobCount             = 10000\n"
        "MaxStepCount            = 40000\n"
    )
    assert parse_max_array_size(config) == 1001
    assert parse_max_array_size(config.replace("1001", "40001")) == 40001
    assert parse_max_array_size("MaxJobCount = 10000\n") is None
    assert parse_max_array_size("") is None
