"""A batch step throttled live on the real local SLURM (over SSH): the job arrays already
queued get the new ArrayTaskThrottle (as `scontrol show job` shows), and a throttle given
while nobody runs the campaign reaches its arrays when a runner resumes it."""

from __future__ import annotations

import re
import threading

import pytest

from cluster.slurm.compute import SlurmCompute
from orchestrator.engine import Engine
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.fixtures.slurm import REPO
from tests.helpers import spec_doc, wait_for

pytestmark = pytest.mark.slurm


def _arrays(service: Service, cid: str) -> set[str]:
    """The job arrays the campaign's tasks were submitted in (`name#i=array_task`)."""
    return {
        t.job_id.split("=", 1)[1].split("_", 1)[0]
        for t in service.store.list_tasks(cid, limit=1000)
        if t.job_id and t.job_id[-1].isdigit()
    }


def _array_throttles(compute: SlurmCompute, arrays: set[str]) -> set[str]:
    shown = compute.transport.run_sync(["scontrol", "show", "job", *sorted(arrays)], check=False)
    return set(re.findall(r"ArrayTaskThrottle=(\d+)", shown.stdout))


def _applied(service: Service, cid: str, limit: int) -> bool:
    message = f"at most {limit} task(s) of each job array at once"
    return any(
        e.kind == "throttle-applied" and e.step == "sim" and (e.message or "").startswith(message)
        for e in service.events(cid, limit=10_000)
    )


def _start(engine: Engine) -> threading.Thread:
    thread = threading.Thread(target=engine.run, name="engine")
    thread.start()
    return thread


def test_queued_arrays_are_throttled_live_and_after_resume(
    slurm: SlurmCompute, slurm_service: Service
) -> None:
    service = slurm_service
    step = {"batch": {"script": "sleep 4", "array_parallelism": 3}, "foreach": True}
    doc = spec_doc("slurm-throttle", {"sim": step}, x={"range": [0, 8]})
    cid = service.submit(parse_document(doc), import_paths=[str(REPO)])
    engine = service.engine(cid, slurm)
    thread = _start(engine)
    try:
        arrays = wait_for(lambda: _arrays(service, cid), 90, "the step's job arrays")
        assert _array_throttles(slurm, arrays) == {"3"}  # as submitted
        service.throttle(cid, 1, step="sim")
        wait_for(lambda: _applied(service, cid, 1), 60, "the throttle applied")
        assert _array_throttles(slurm, arrays) == {"1"}
    finally:
        engine.stop()  # the runner stops; its jobs go on, the campaign stays resumable
        thread.join(120)
    assert service.status(cid)["state"] == "running"

    service.throttle(cid, 2, step="sim")  # nobody runs it: kept with the campaign
    assert _array_throttles(slurm, arrays) == {"1"}
    assert service.status(cid)["throttle"] == {"window": None, "steps": {"sim": 2}}
    resumed = service.engine(cid, slurm)
    thread = _start(resumed)
    try:
        wait_for(lambda: _applied(service, cid, 2), 60, "the throttle applied on resume")
        wait_for(lambda: _array_throttles(slurm, arrays) == {"2"}, 60, "the arrays re-throttled")
    finally:
        service.cancel(cid)  # no need to wait for every task: scancel the arrays
        thread.join(120)
    assert service.status(cid)["state"] == "cancelled"


def test_an_array_slurm_does_not_know_is_named_with_its_message(slurm: SlurmCompute) -> None:
    refused = slurm.slurm.throttle_arrays_sync(["999999", "not-an-id"], 2)
    assert list(refused) == ["999999"] and "Invalid job id" in refused["999999"]
