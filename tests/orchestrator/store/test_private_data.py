"""The data folder and the SQLite file are private from their creation: the folder 0700, the
database 0600 (and its -wal/-shm files, which SQLite gives the database's mode), the embedded
knowledge graph's folder 0700, even under a permissive umask. A folder that already exists
is left as its owner set it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.kg.embedded import EmbeddedKnowledgeGraph
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.helpers import spec_doc, submit
from tests.orchestrator.kg.sample import campaign


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_folder_is_0700_and_its_database_0600(tmp_path: Path) -> None:
    data = tmp_path / "home" / "data"
    service = Service(Settings(data_dir=data, results_url=str(tmp_path / "results")))
    try:
        submit(service, spec_doc("private", {"a": {"command": "true"}}))  # a write: WAL files
        assert mode(data) == 0o700
        database = data / "orchestrator.db"
        assert mode(database) == 0o600
        for suffix in ("-wal", "-shm"):
            assert mode(Path(f"{database}{suffix}")) == 0o600
    finally:
        service.close()
    assert mode(tmp_path / "home") == 0o755  # folders above it are not ours to narrow


def test_a_database_elsewhere_is_0600_in_a_0700_folder_made_for_it(tmp_path: Path) -> None:
    database = tmp_path / "state" / "campaigns.db"
    settings = Settings(data_dir=tmp_path / "data", db_url=f"sqlite:///{database}")
    Service(settings).close()
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir(mode=0o750)
    os.chmod(data, 0o750)
    Service(Settings(data_dir=data)).close()
    assert mode(data) == 0o750
    assert mode(data / "orchestrator.db") == 0o600


def test_the_embedded_knowledge_graph_folder_is_0700(tmp_path: Path) -> None:
    graph = EmbeddedKnowledgeGraph(tmp_path / "data" / "kg")
    try:
        graph.register([campaign()])
    finally:
        graph.close()
    assert mode(tmp_path / "data" / "kg") == 0o700
    assert mode(tmp_path / "data") == 0o755  # the kg's own folder: its parent may be anything
