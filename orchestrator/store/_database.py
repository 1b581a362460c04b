"""The connection to the state store: engine, SQLite pragmas, transactions, migrations.

SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL. A SQLite file is created
empty with mode 0600 before SQLite opens it (its -wal and -shm files get the same mode from
SQLite), in a folder created 0700 if missing (`orchestrator.private_paths`). A write runs in one
transaction that commits before it returns, so nothing reported is ever lost; an
unreachable database surfaces as `StoreError`, with the URL's password left out.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from orchestrator.errors import StoreError
from orchestrator.private_paths import make_private_file, make_private_folder

MIGRATIONS = Path(__file__).parent / "migrations"
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE
MIGRATING = 0x6F7263686D6967  # the advisory lock held while the schema is migrated
VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


class Database:
    """One state store's engine; the table-group modules read and write through it."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.engine: Engine = _make_engine(url, echo)
        self.dialect = self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already).

        Processes that open a new store at once (a front door and an instance) migrate it one
        at a time: a lock file beside a SQLite file, an advisory lock on PostgreSQL; the
        revision is read again under the lock."""
        with self.engine.connect() as conn:
            if _stored_revision(conn) == _newest_revision():
                return  # the usual case, decided without importing Alembic (~0.2-1 s)
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self._migration_lock(), self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATING})
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            # a project's role (isolation.py) may not change the schema
            raise StoreError(
                f"the store's schema is at revision {current}, this code needs "
                f"{head}, and this database role may not migrate it: "
                "run `orchestrator db migrate` as the tables' owner"
            ) from exc

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """An exclusive lock on `<file>.migrating` for a SQLite file (nothing otherwise)."""
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        lock = Path(f"{database}.migrating")
        make_private_file(lock)
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def try_lock(self, name: str) -> Iterator[bool]:
        """Hold the store-wide lock `name` if no other process holds it: yields whether it is
        held. An advisory lock on PostgreSQL (a connection of its own until the block ends),
        a lock file beside a SQLite file; in memory, always held."""
        if self.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            with self.engine.connect() as conn:
                held = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                )
                conn.commit()  # the lock is the session's: it outlives this transaction
                try:
                    yield held
                finally:
                    if held:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
            return
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            yield True
            return
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        lock = Path(f"{database}.{digest}.lock")
        make_private_file(lock)
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        self.engine.dispose()

    def connect(self) -> Connection:
        """A connection for reads (used as a context manager; nothing is committed)."""
        return self.engine.connect()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction, committed on leaving the block (rolled back on an error)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"state store unavailable: {exc.orig}") from exc
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            # a project's role writing outside its project (row-level security, isolation.py)
            reason = str(exc.orig).strip().splitlines()[0]
            raise StoreError(f"the state store refused the write: {reason}") from exc


def _stored_revision(conn: Connection) -> str | None:
    """The schema's revision as Alembic recorded it (None: a new store, or several heads)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return str(rows[0]) if len(rows) == 1 else None


def _newest_revision() -> str | None:
    """The head of `migrations/versions`, read from the files' `revision` / `down_revision`
    lines; None when anything there is not plain (Alembic then decides)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        found: dict[str, str] = {m[1]: m[2] for m in _REVISION.finditer(path.read_text())}
        revision = re.fullmatch(r"['\"]([\w-]+)['\"]", found.get("revision", "").strip())
        if revision is None:
            return None
        revisions.add(revision.group(1))
        parents.update(re.findall(r"['\"]([\w-]+)['\"]", found.get("down_revision", "")))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _make_engine(url: str, echo: bool) -> Engine:
    try:
        if url.startswith("sqlite"):
            parsed = make_url(url)
            database = parsed.database
            if database and database != ":memory:" and "uri" not in parsed.query:
                make_private_folder(Path(database).parent)
                make_private_file(Path(database))
            engine = create_engine(url, echo=echo, connect_args={"timeout": 60})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, echo=echo, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot use state store {_redact(url)}: {exc}") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    _use_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not only a crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _use_wal(cursor: Any, patience: float = 60.0) -> None:
    """WAL mode (kept in the file, so set once). Switching needs the file to itself, and SQLite
    answers "database is locked" at once rather than waiting for another process's
    transaction (e.g. its migration): asked again until `patience` runs out."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"
