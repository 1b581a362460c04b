"""The rule that sizes chunks (`chunk_sizes`): fixed N, and `auto` from measured run times."""

from __future__ import annotations

from orchestrator.engine.chunks import TARGET_SECONDS, chunk_sizes


def test_fixed_size_splits_the_queued_points() -> None:
    assert chunk_sizes(25, 10, None, 0, 2000, 2) == [10, 10, 5]
    assert chunk_sizes(3, 10, None, 0, 2000, 2) == [3]


def test_a_partial_chunk_waits_while_the_workers_are_busy() -> None:
    # 2 worker threads: 4 chunks in flight keep them busy; a partial chunk waits for more points
    assert chunk_sizes(25, 10, None, 2, 2000, 2) == [10, 10]
    assert chunk_sizes(25, 10, None, 1, 2000, 2) == [10, 10, 5]
    assert chunk_sizes(5, 10, None, 4, 2000, 2) == []


def test_auto_starts_with_chunks_of_one_until_a_run_time_is_known() -> None:
    assert chunk_sizes(100, "auto", None, 0, 2000, 2) == [1, 1, 1, 1]
    assert chunk_sizes(100, "auto", None, 3, 2000, 2) == [1]
    assert chunk_sizes(100, "auto", None, 4, 2000, 2) == []
    assert chunk_sizes(2, "auto", None, 0, 2000, 2) == [1, 1]


def test_auto_aims_at_about_a_second_per_chunk() -> None:
    assert chunk_sizes(1000, "auto", 0.01, 0, 2000, 2) == [int(TARGET_SECONDS / 0.01)] * 4
    assert chunk_sizes(10, "auto", 0.25, 0, 2000, 2) == [4, 4, 2]
    assert chunk_sizes(3, "auto", 5.0, 0, 2000, 2) == [1, 1, 1]  # slow points: one per task


def test_auto_keeps_two_chunks_per_worker_thread_in_flight() -> None:
    # the other points wait: the next chunks are sized from the run times measured meanwhile
    assert chunk_sizes(1000, "auto", 0.01, 3, 2000, 2) == [100]
    assert chunk_sizes(1000, "auto", 0.01, 4, 2000, 2) == []
    assert chunk_sizes(1000, "auto", 0.5, 0, 2000, 3) == [2] * 6


def test_auto_is_bounded_by_the_window_over_twice_the_workers() -> None:
    assert chunk_sizes(2000, "auto", 1e-5, 0, 2000, 2) == [500] * 4
    assert chunk_sizes(2000, "auto", 1e-5, 0, 2000, 10) == [100] * 20
    assert chunk_sizes(64, "auto", 1e-5, 0, 16, 4) == [2] * 8
    assert chunk_sizes(5, "auto", 1e-5, 0, 2, 4) == [1] * 5  # never below one point
