"""`orchestrator db migrate|grant-project|revoke-project` on a real PostgreSQL store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from orchestrator.cli.main import cli
from tests.fixtures.project_roles import A


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ORCHESTRATOR_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no orchestrator.toml
    return CliRunner()


@pytest.mark.postgres
def test_grant_prints_the_password_only_when_asked(
    runner: CliRunner, owner_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ORCHESTRATOR_DB_URL", owner_url)
    assert runner.invoke(cli, ["db", "migrate"]).exit_code == 0
    quiet = runner.invoke(cli, ["db", "grant-project", A])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout == "" and f"may use project {A}'s rows" in quiet.stderr
    loud = runner.invoke(cli, ["db", "grant-project", "--print-url", A])
    assert loud.exit_code == 0, loud.output
    (url,) = loud.stdout.splitlines()
    assert url.startswith("postgresql+psycopg://orch_p_") and url not in loud.stderr
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT project FROM project_roles")).scalars().all() == [A]
    gone = runner.invoke(cli, ["db", "revoke-project", A])
    assert gone.exit_code == 0 and "dropped" in gone.stderr
    with pytest.raises(DBAPIError):
        engine.connect()
    engine.dispose()


def test_grant_names_what_is_wrong(runner: CliRunner):
    sqlite = runner.invoke(cli, ["db", "grant-project", A])
    assert sqlite.exit_code == 1 and "need PostgreSQL" in sqlite.stderr
    bad = runner.invoke(cli, ["db", "grant-project", "not a project"])
    assert bad.exit_code == 1 and "'not a project'" in bad.stderr
