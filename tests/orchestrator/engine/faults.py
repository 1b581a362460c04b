"""What every fault test on a real component asks of the campaign it disturbed, and how long
the campaign took to move again after the fault ended."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import Compute
from orchestrator.service import Service
from orchestrator.spec import parse_document
from orchestrator.store.records import EventRecord
from tests.fixtures.slurm import REPO


@dataclass
class Running:
    """A campaign run by `Service.run` on a thread of its own."""

    service: Service
    campaign_id: str
    thread: threading.Thread
    outcome: dict[str, Any] = field(default_factory=dict)

    def join(self, timeout: float) -> str | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the campaign did not end within {timeout} s"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome.get("state")


def start(service: Service, compute: Compute, doc: dict[str, Any]) -> Running:
    cid = service.submit(parse_document(doc), import_paths=[str(REPO)])
    running = Running(service, cid, threading.Thread(target=lambda: None))

    def target() -> None:
        try:
            running.outcome["state"] = service.run(cid, compute)
        except BaseException as error:  # shown by join()
            running.outcome["error"] = error

    running.thread = threading.Thread(target=target, daemon=True)
    running.thread.start()
    return running


def succeeded_now(service: Service, cid: str) -> dict[tuple[str, int | None], int]:
    """The tasks that have finished, with the attempt that finished them."""
    return {
        (t.step, t.point): t.attempt
        for t in service.store.list_tasks(cid, limit=10**6)
        if t.state == "succeeded"
    }


def check_campaign(
    service: Service,
    cid: str,
    points: int,
    counter: Path,
    finished_before: dict[tuple[str, int | None], int],
) -> list[EventRecord]:
    """The campaign succeeded, every point's result is there, nothing that had finished (at
    the fault) ran again; returns the events."""
    status = service.status(cid)
    assert status["state"] == "succeeded", status
    tasks = {(t.step, t.point): t for t in service.store.list_tasks(cid, limit=10**6)}
    sims = {p: t for (step, p), t in tasks.items() if step == "sim"}
    assert sorted(p for p in sims if p is not None) == list(range(points))
    assert all(t.state == "succeeded" for t in tasks.values())
    assert all(t.result in (p, {"x": p}) for p, t in sims.items()), sims
    events = service.events(cid, limit=10**5)
    for key, attempt in finished_before.items():
        assert tasks[key].attempt == attempt, f"{key} ran again after it had finished"
        own = [e for e in events if e.kind == "task" and (e.step, e.point) == key]
        done = [e for e in own if e.state == "succeeded"]
        assert len(done) == 1 and max(e.attempt or 0 for e in own) == attempt, own
    runs = Counter(int(line.split()[0]) for line in counter.read_text().splitlines())
    for _step, point in finished_before:
        assert point is not None and runs[point] == 1, (
            f"point {point} had finished and ran again: {runs}"
        )
    assert set(runs) == set(range(points)), runs
    return events


def recovery(events: list[EventRecord], fault_end: float) -> float:
    """Seconds from the fault's end to the next task of the campaign finishing."""
    after = [e.time for e in events if e.kind == "task" and e.state == "succeeded"]
    after = [t for t in after if t >= fault_end]
    assert after, "no task finished after the fault ended"
    return min(after) - fault_end


def report(name: str, seconds: float) -> None:
    print(f"\nRECOVERY {name}: {seconds:.1f} s after the fault ended")
