"""SLURM reached over SSH, against dask-jobqueue's own local `sbatch`, on the same SLURM.

    eval "$(deploy/local-slurm/up)"          # as root: the local single-node SLURM + sshd
    .venv/bin/python bench/slurm_over_ssh.py  # ~1-2 min

(a) Worker start-up: time from `scale(1)` to one connected worker, for our SSHSLURMCluster
    (the job script piped to `sbatch` over SSH on loopback) and for dask-jobqueue's
    SLURMCluster (`sbatch` run locally, which works here because this machine is the head
    node). Same job shape (1 core, 1 GiB, this interpreter), alternating, --repeats times
    each; medians. Target: ours ≤ 1.5× dask-jobqueue's.
(b) SSH commands per poll cycle while 1, 10 and 100 batch jobs are tracked (held in the
    queue with `--hold`, so they use no CPU), next to what one query per job would send.
    Target: constant.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ensure_repo_on_path, median, table, verdict

ensure_repo_on_path()

from cluster.settings import ClusterSettings  # noqa: E402
from cluster.slurm.batch import BatchJob  # noqa: E402
from cluster.slurm.compute import SlurmCompute  # noqa: E402
from orchestrator.settings import load_settings  # noqa: E402


def settings_from_env() -> ClusterSettings:
    """The service's own settings (the exports of deploy/local-slurm/up), with a fixed-size
    cluster of this interpreter's workers calling back on loopback."""
    if os.environ.get("ORCHESTRATOR_CLUSTER__KIND") != "slurm" or "SLURM_CONF" not in os.environ:
        sys.exit('run `eval "$(deploy/local-slurm/up)"` first (as root)')
    cluster = load_settings().cluster
    slurm = cluster.slurm.model_copy(
        update={
            "python": sys.executable,
            "scheduler_host": "127.0.0.1",
            "contact_address": "127.0.0.1",
            "memory": "1GiB",
            "adaptive": False,
            "minimum_jobs": 0,
            "lifetime": None,
            "dashboard_address": None,
            "poll_interval": 1.0,
        }
    )
    return cluster.model_copy(update={"slurm": slurm})


def wait_for_empty_queue(timeout: float = 60.0) -> None:
    """The previous measurement's job has left the queue (its CPU is free again)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True, check=True)
        if not queue.stdout.strip():
            return
        time.sleep(0.2)
    raise RuntimeError("the SLURM queue did not empty")


def startup_ours(settings: ClusterSettings) -> float:
    with SlurmCompute(settings) as compute:
        started = time.perf_counter()
        compute.cluster.scale(1)
        compute.client.wait_for_workers(1, timeout=120)
        return time.perf_counter() - started


def startup_jobqueue(settings: ClusterSettings) -> float:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    s = settings.slurm
    cluster = SLURMCluster(
        cores=1,
        memory="1GiB",
        processes=1,
        queue=s.partition,
        python=sys.executable,
        walltime=s.walltime,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        job_extra_directives=[f"--output={s.work_dir}/jobqueue-%j.out"],
    )
    try:
        with Client(cluster) as client:
            started = time.perf_counter()
            cluster.scale(1)
            client.wait_for_workers(1, timeout=120)
            return time.perf_counter() - started
    finally:
        cluster.close()


def commands_per_poll(settings: ClusterSettings, counts: list[int]) -> list[list[object]]:
    rows: list[list[object]] = []
    with SlurmCompute(settings) as compute:
        runner, transport = compute.batch, compute.transport
        assert runner is not None
        tracked: list[str] = []
        try:
            for n in counts:
                while len(tracked) < n:  # separate jobs (not one array): the harder case
                    name = f"bench-held-{len(tracked)}"
                    job = BatchJob(name, ["true"], ["/tmp"], options=["--hold"])
                    tracked += runner.submit(job)
                before = transport.commands_run
                result = runner.poll()
                sent = transport.commands_run - before
                assert not result.ended, "held jobs must not end"
                rows.append([n, sent, n, verdict(sent == 1)])
        finally:
            compute.slurm.cancel_sync(tracked)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    settings = settings_from_env()

    ours: list[float] = []
    theirs: list[float] = []
    for i in range(args.repeats):  # alternating which goes first; each on an empty queue
        for which in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
            wait_for_empty_queue()
            if which == "ours":
                ours.append(startup_ours(settings))
            else:
                theirs.append(startup_jobqueue(settings))
    ratio = median(ours) / median(theirs)
    print("(a) scale(1) to a connected worker, median of", args.repeats)
    print(
        table(
            ["", "over SSH (ours)", "local sbatch (dask-jobqueue)", "ratio", "target ≤ 1.5"],
            [
                [
                    "seconds",
                    f"{median(ours):.2f}",
                    f"{median(theirs):.2f}",
                    f"{ratio:.2f}",
                    verdict(ratio <= 1.5),
                ]
            ],
        )
    )
    print("    all runs, ours:", " ".join(f"{t:.2f}" for t in ours))
    print("    all runs, dask-jobqueue:", " ".join(f"{t:.2f}" for t in theirs))
    print()
    print("(b) SSH commands per poll cycle")
    print(
        table(
            ["jobs tracked", "commands (ours)", "one query per job", "constant"],
            commands_per_poll(settings, [1, 10, 100]),
        )
    )


if __name__ == "__main__":
    main()
