"""The worker side of a chunk, called directly (no Dask worker: nothing is reported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.execute import TaskCall
from orchestrator.engine.execute_chunk import (
    MARKS,
    ChunkCall,
    execute_chunk,
    light,
    outcome_of,
    report_of,
)
from orchestrator.engine.outcome import Outcome
from orchestrator.errors import ChunkStartedBefore


def call(tmp_path: Path, point: int, target: str = "tests.workloads:write_file") -> TaskCall:
    return TaskCall(
        campaign_id="c1",
        step="write",
        kind="run",
        target=target,
        point=point,
        attempt=1,
        results_url=str(tmp_path / "results"),
        parameters={"x": point},
        pass_params=("x",),
        pass_ctx=True,
    )


def test_points_run_in_order_each_in_its_own_folder(tmp_path: Path) -> None:
    calls = [call(tmp_path, p) for p in range(3)]
    calls.insert(1, call(tmp_path, 7, "tests.workloads:fail_on"))  # given ctx: fails
    outcomes = execute_chunk(ChunkCall("k-chunk", "t", calls), [{}] * 4)
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert "TypeError" in (outcomes[1].error or "")  # a failed point does not stop the chunk
    for point in range(3):
        assert (tmp_path / "results" / "write" / f"{point:06d}" / "value.txt").exists()
    assert all(o.value is None and not o.inline for o in outcomes if o.ok)  # light
    assert [o.load() for o in outcomes if o.ok] == ["value.txt"] * 3  # from what it stored
    assert outcomes[0].started_at is not None and outcomes[0].finished_at is not None


def test_a_report_round_trips_the_outcome() -> None:
    outcome = Outcome(
        ok=True,
        value=[1, 2],
        stored=[1, 2],
        started_at=1.0,
        finished_at=2.5,
        worker="tls://w",
        outputs=[{"path": "a.txt", "url": "file:///r/a.txt", "size": 3}],
    )
    again = outcome_of(report_of(light(outcome)))
    assert again == light(outcome)
    assert again.load() == [1, 2]
    failed = Outcome(ok=False, error="boom", started_at=1.0, finished_at=2.0)
    assert outcome_of(report_of(failed)) == failed


def test_a_chunk_started_again_runs_no_point(tmp_path: Path) -> None:
    chunk = ChunkCall("write-c1-0-1-chunk", "t", [call(tmp_path, 0), call(tmp_path, 1)])
    assert [o.ok for o in execute_chunk(chunk, [{}, {}])] == [True, True]
    marks = tmp_path / "results" / MARKS
    assert [p.name for p in marks.iterdir()] == ["write-c1-0-1-chunk"]
    (tmp_path / "results" / "write" / "000000" / "value.txt").unlink()
    with pytest.raises(ChunkStartedBefore, match="started before"):
        execute_chunk(chunk, [{}, {}])
    assert not (tmp_path / "results" / "write" / "000000" / "value.txt").exists()  # not run
