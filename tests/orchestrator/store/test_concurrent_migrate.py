"""Processes that open a new store at the same moment (a front door and an instance started
together) all come up: the schema is migrated once, by whichever gets there first."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from orchestrator.store._database import Database

PROCESSES = 6


def _migrate(url: str, start: multiprocessing.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    database = Database(url)
    start.wait()
    database.migrate()
    database.close()


def _race(url: str) -> list[int | None]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    processes = [context.Process(target=_migrate, args=(url, start)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    return [process.exitcode for process in processes]


def test_new_sqlite_store_opened_by_several_processes_at_once(tmp_path: Path) -> None:
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'store-{round_}.db'}"
        assert _race(url) == [0] * PROCESSES
        Database(url).migrate()  # at head: nothing to do, no error


@pytest.mark.postgres
def test_new_postgres_store_opened_by_several_processes_at_once(pg_url: str) -> None:
    assert _race(pg_url) == [0] * PROCESSES
