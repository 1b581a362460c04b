"""A store-wide lock that one process at a time holds (two front doors bringing up one
project): a lock file beside SQLite, an advisory lock on PostgreSQL, each taken by another
process than the one asking."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from orchestrator.store import Store


def _hold(
    url: str,
    name: str,
    held: multiprocessing.synchronize.Event,
    done: multiprocessing.synchronize.Event,
) -> None:  # type: ignore[name-defined]
    store = Store(url)
    with store.try_lock(name) as got:
        assert got
        held.set()
        done.wait(60)
    store.close()


def _check(url: str) -> None:
    store = Store(url)
    store.migrate()
    context = multiprocessing.get_context("spawn")
    held, done = context.Event(), context.Event()
    other = context.Process(target=_hold, args=(url, "bring-up:lab/p1", held, done))
    other.start()
    try:
        assert held.wait(60)
        with store.try_lock("bring-up:lab/p1") as got:
            assert got is False  # the other process holds it
        with store.try_lock("bring-up:lab/p2") as got:
            assert got is True  # another name is another lock
    finally:
        done.set()
        other.join(60)
    assert other.exitcode == 0
    with store.try_lock("bring-up:lab/p1") as got:  # released with its holder's block
        assert got is True
    store.close()


def test_sqlite_lock_is_held_by_one_process_at_a_time(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
def test_postgres_lock_is_held_by_one_process_at_a_time(pg_url: str) -> None:
    _check(pg_url)
