"""PostgreSQL restarted under a campaign running on the real local SLURM. The server is one
of this test's own (deploy/postgres/up in a folder of its own), never the shared one."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.slurm.compute import SlurmCompute
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.conftest import fast_engine
from tests.fixtures.slurm import REPO
from tests.helpers import spec_doc, wait_for
from tests.orchestrator.engine.faults import (
    check_campaign,
    recovery,
    report,
    start,
    succeeded_now,
)

pytestmark = [pytest.mark.slurm, pytest.mark.postgres]

STATE = Path("/tmp/orch-pg-faults")
POINTS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg(action: str, port: int) -> str:
    env = {**os.environ, "ORCHESTRATOR_PG_PORT": str(port)}
    proc = subprocess.run(
        [str(REPO / "deploy" / "postgres" / action), str(STATE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _restart() -> None:
    """`pg_ctl restart` (fast: open connections are cut), as the server's owner."""
    data = STATE / "data"
    owner = data.owner()
    pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
    cmd = [str(pg_ctl), "-D", str(data), "-w", "-m", "fast", "-l", str(STATE / "restart.log")]
    subprocess.run(
        ["runuser", "-u", owner, "--", *cmd, "restart"],
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )


@pytest.fixture
def own_pg() -> Iterator[tuple[str, int]]:
    """(URL, port) of a PostgreSQL server of this test's own, stopped at the end."""
    port = _free_port()
    _pg("down", port)
    out = _pg("up", port)
    url = out.strip().split("=", 1)[1]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        yield url, port
    finally:
        _pg("down", port)


def test_postgres_restarted_mid_campaign(
    slurm: SlurmCompute, own_pg: tuple[str, int], tmp_path: Path
) -> None:
    url, _port = own_pg
    engine = fast_engine()
    engine.batch_poll_interval = 0.5
    service = Service(
        Settings(
            data_dir=tmp_path / "data",
            results_url=str(tmp_path / "results"),
            db_url=url,
            engine=engine,
        )
    )
    counter = tmp_path / "ran.txt"
    script = (
        f"echo {{{{ x }}}} $SLURM_JOB_ID >> {counter}\nsleep 3\n"
        "echo '{\"x\": {{ x }}}' > {{ output_dir }}/result.json"
    )
    step = {"batch": {"script": script, "array_parallelism": 2}, "foreach": True}
    doc = spec_doc("pg-restart", {"sim": step}, x={"range": [0, POINTS]})
    try:
        running = start(service, slurm, doc)
        finished = wait_for(lambda: succeeded_now(service, running.campaign_id), 180, "a task")
        fault_start = time.time()
        _restart()
        fault_end = time.time()
        assert running.join(300) == "succeeded"
        events = check_campaign(service, running.campaign_id, POINTS, counter, finished)
        assert all(e.attempt == 1 for e in events if e.kind == "task")
        report(
            f"PostgreSQL restarted (down {fault_end - fault_start:.1f} s)",
            recovery(events, fault_end),
        )
    finally:
        service.close()
