"""Opening a store whose schema is already at the newest revision decides so without
importing Alembic; the revision read from the migration files is Alembic's own head, and
anything unusual there leaves the decision to Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from orchestrator.store import _database
from orchestrator.store._database import MIGRATIONS, Database, _newest_revision

REPO = Path(__file__).resolve().parents[3]


def test_the_newest_revision_is_alembics_head() -> None:
    assert _newest_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_a_store_at_head_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    Database(url).migrate()  # a new store: migrated by Alembic
    probe = (
        "import sys\n"
        "from orchestrator.store._database import Database\n"
        f"Database({url!r}).migrate()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_store_behind_head_is_migrated(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'store.db'}"
    database = Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    previous = ScriptDirectory(str(MIGRATIONS)).get_revision("head").down_revision
    assert isinstance(previous, str)
    with database.engine.begin() as conn:  # a store one revision behind head
        config.attributes["connection"] = conn
        command.upgrade(config, previous)
    with database.connect() as conn:
        assert _database._stored_revision(conn) == previous
    database.migrate()
    with database.connect() as conn:
        assert _database._stored_revision(conn) == _newest_revision()


def _versions(folder: Path, files: dict[str, str]) -> Path:
    (folder / "versions").mkdir(parents=True)
    for name, text in files.items():
        (folder / "versions" / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("files", "head"),
    [
        (
            {
                "0001_a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision: str = "0002"\ndown_revision: str | None = "0001"\n',
            },
            "0002",
        ),
        ({"0001_a.py": "revision = make_revision()\ndown_revision = None\n"}, None),
        ({"x.py": "# no revision here\n"}, None),
        (
            {
                "0001_a.py": 'revision = "0001"\ndown_revision = None\n',
                "0002_b.py": 'revision = "0002"\ndown_revision = "0001"\n',
                "0003_c.py": 'revision = "0003"\ndown_revision = "0001"\n',
            },
            None,  # two heads
        ),
    ],
)
def test_unusual_migration_files_leave_the_decision_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], head: str | None
) -> None:
    monkeypatch.setattr(_database, "MIGRATIONS", _versions(tmp_path, files))
    assert _newest_revision() == head
