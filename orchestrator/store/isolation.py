"""A project's instance gets a database role that reaches only its project's rows.

On PostgreSQL the tables carry row-level security policies (migration 0004): a row of
`campaigns` is visible and writable only to the role that `project_roles` maps to its
project, and the rows of `tasks`, `task_counts` (migration 0006), `events`, `controls` and
`outbox` only to the role of their campaign's project. The policies test the connected
role (`current_user`), which an instance cannot change: it is a member of no other role,
and holds no right to write `project_roles`, to change the schema, or to TRUNCATE. The
tables' owner (the front door's role, `ORCHESTRATOR_DB_URL`, which runs the migrations) is
not subject to the policies.

`grant_project` creates or updates a project's role, idempotently: its attributes, a new
password (sent to the server as a SCRAM verifier, so the password itself never reaches
the server's logs), its table privileges and its mapping. It needs a role with CREATEROLE
that owns the tables. `project_database_url` is what a front door hands an instance
(`ORCHESTRATOR_DB_URL` in its environment); on SQLite (the all-in-one default) it is the
store's own URL: one process, nothing to separate.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, String, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError, StatementError
from sqlalchemy.pool import NullPool

from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from orchestrator.settings import Settings

# every table that holds a project's rows; each has the `own_project` policy
ISOLATED_TABLES = ("campaigns", "tasks", "task_counts", "events", "controls", "outbox")
# what an instance only reads: its own mapping, and the schema's revision (to check it)
READ_ONLY_TABLES = ("project_roles", "alembic_version")
SERIAL_COLUMNS = (("controls", "id"), ("outbox", "id"))
ROLE_PREFIX = "orch_p_"
ROLE_ATTRIBUTES = "LOGIN NOCREATEDB NOCREATEROLE NOINHERIT"
# set when the role is made; only a superuser may name them later, or give them
NEW_ROLE_ATTRIBUTES = f"{ROLE_ATTRIBUTES} NOSUPERUSER NOREPLICATION NOBYPASSRLS"
_ID = r"[A-Za-z0-9_-]{1,100}"
_PROJECT = re.compile(rf"{_ID}/{_ID}")


@dataclass(frozen=True)
class ProjectGrant:
    """A project's role in one database; `url` carries its password (kept out of repr)."""

    project: str
    role: str
    database: str
    url: str = field(repr=False)


def check_project(project: str) -> str:
    if _PROJECT.fullmatch(project) is None:
        raise StoreError(
            f"project must be 'vlab_id/project_id' (letters, digits, '_', '-'), not {project!r}"
        )
    return project


def role_name(database: str, project: str) -> str:
    """The project's role name: stable, and distinct per database (roles are server-wide)."""
    digest = hashlib.sha256(f"{database}\0{project}".encode()).hexdigest()
    return ROLE_PREFIX + digest[:24]


def project_database_url(settings: Settings, project: str) -> str:
    """The URL an instance of `project` opens the store with.

    PostgreSQL: the project's role, granted (or refreshed) now with a new password; the
    caller hands the URL to the instance's environment only, never to a log. SQLite: the
    store's own URL, unchanged."""
    check_project(project)
    url = settings.database_url
    if not _is_postgresql(url):
        return url
    return grant_project(url, project).url


def grant_project(admin_url: str, project: str) -> ProjectGrant:
    """Create or update `project`'s role in the database at `admin_url` (a role with
    CREATEROLE that owns the tables), with a new password; safe to repeat."""
    check_project(project)
    password = secrets.token_urlsafe(32)
    with _admin(admin_url) as conn:
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        role = role_name(database, project)
        _lock(conn, role)
        quoted = conn.dialect.identifier_preparer.quote(role)
        verifier = _literal(conn, _scram_verifier(conn, role, password))
        if _role_exists(conn, role):
            _check_unprivileged(conn, role)
            _ddl(conn, f"ALTER ROLE {quoted} WITH {ROLE_ATTRIBUTES} PASSWORD {verifier}")
        else:
            _ddl(conn, f"CREATE ROLE {quoted} WITH {NEW_ROLE_ATTRIBUTES} PASSWORD {verifier}")
        comment = _literal(conn, f"orchestrator instance of project {project}")
        _ddl(conn, f"COMMENT ON ROLE {quoted} IS {comment}")
        _grant_tables(conn, role, database)
        # a project has one role (another one, e.g. of the database's old name, sees nothing)
        conn.execute(
            text("DELETE FROM project_roles WHERE project = :p AND role_name <> :r"),
            {"p": project, "r": role},
        )
        conn.execute(
            text(
                "INSERT INTO project_roles (role_name, project, granted_at)"
                " VALUES (:role, :project, :now)"
                " ON CONFLICT (role_name) DO UPDATE SET project = EXCLUDED.project"
            ),
            {"role": role, "project": project, "now": time.time()},
        )
    url = make_url(admin_url).set(username=role, password=password)
    return ProjectGrant(project, role, database, url.render_as_string(hide_password=False))


def revoke_project(admin_url: str, project: str) -> bool:
    """Drop `project`'s role from the database at `admin_url`; False if it had none."""
    check_project(project)
    with _admin(admin_url) as conn:
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        role = role_name(database, project)
        _lock(conn, role)
        conn.execute(text("DELETE FROM project_roles WHERE role_name = :r"), {"r": role})
        if not _role_exists(conn, role):
            return False
        quoted = conn.dialect.identifier_preparer.quote(role)
        _grant_tables(conn, role, database, revoke=True)
        _ddl(conn, f"DROP ROLE {quoted}")
    return True


def _grant_tables(conn: Connection, role: str, database: str, *, revoke: bool = False) -> None:
    """Give `role` what an instance needs, or take it back (`revoke`). The database and
    its schema are usually open to PUBLIC already, and may belong to another role: they are
    granted only when missing, and revoked only when granted to `role` itself."""
    quote = conn.dialect.identifier_preparer.quote
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    sequences = [
        conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": t, "c": c}).scalar_one()
        for t, c in SERIAL_COLUMNS
    ]
    privileges = [
        ("SELECT, INSERT, UPDATE, DELETE", f"TABLE {', '.join(ISOLATED_TABLES)}"),
        ("SELECT", f"TABLE {', '.join(READ_ONLY_TABLES)}"),
        ("USAGE, SELECT", f"SEQUENCE {', '.join(sequences)}"),
    ]
    for what, on, has, direct in (
        ("CONNECT", f"DATABASE {quote(database)}", _HAS_CONNECT, _DIRECT_ON_DATABASE),
        ("USAGE", f"SCHEMA {quote(schema)}", _HAS_USAGE, _DIRECT_ON_SCHEMA),
    ):
        if not conn.execute(text(direct if revoke else has), {"r": role}).scalar():
            privileges.insert(0, (what, on))
    quoted = quote(role)
    for what, on in privileges:
        if revoke:
            _ddl(conn, f"REVOKE ALL ON {on} FROM {quoted}")
        else:
            _ddl(conn, f"GRANT {what} ON {on} TO {quoted}")


_HAS_CONNECT = "SELECT has_database_privilege(:r, current_database(), 'CONNECT')"
_HAS_USAGE = "SELECT has_schema_privilege(:r, current_schema(), 'USAGE')"
# NOT: a revoke is needed when the role holds its own grant
_DIRECT_ON_DATABASE = (
    "SELECT NOT EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a"
    " WHERE d.datname = current_database() AND a.grantee = CAST(:r AS regrole))"
)
_DIRECT_ON_SCHEMA = (
    "SELECT NOT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a"
    " WHERE n.nspname = current_schema() AND a.grantee = CAST(:r AS regrole))"
)


@contextmanager
def _admin(admin_url: str) -> Iterator[Connection]:
    """One transaction as the admin role; errors name the fix, never the password."""
    if not _is_postgresql(admin_url):
        raise StoreError(
            "project roles need PostgreSQL (ORCHESTRATOR_DB_URL=postgresql+psycopg://…); "
            "the SQLite store serves one process and has no roles"
        )
    engine = create_engine(admin_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            if not conn.execute(text("SELECT to_regclass('project_roles')")).scalar():
                raise StoreError(
                    "the store's schema is not migrated: run `orchestrator db migrate`"
                )
            yield conn
    except StatementError as exc:  # its text would show the statement (a password verifier)
        raise StoreError(_explain(exc)) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot grant project roles: {type(exc).__name__}") from None
    finally:
        engine.dispose()


def _ddl(conn: Connection, statement: str) -> None:
    """A statement as is: DDL takes no bound parameters (values are quoted literals)."""
    conn.exec_driver_sql(statement)


def _explain(exc: StatementError) -> str:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    message = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    if sqlstate == "42501":  # insufficient_privilege
        return (
            f"the store's role may not manage project roles ({message}): it needs CREATEROLE "
            "and must own the tables (the role that ran the migrations)"
        )
    return f"cannot grant project roles: {message}"


def _lock(conn: Connection, role: str) -> None:
    """Serialise grants of one role (CREATE ROLE has no IF NOT EXISTS)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": role})


def _role_exists(conn: Connection, role: str) -> bool:
    found = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


def _check_unprivileged(conn: Connection, role: str) -> None:
    """Refuse a role that someone gave a power the policies do not hold against (a member
    of another role could SET ROLE to it)."""
    row = conn.execute(
        text(
            "SELECT rolsuper OR rolbypassrls OR rolreplication OR EXISTS"
            " (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid)"
            " FROM pg_roles r WHERE r.rolname = :r"
        ),
        {"r": role},
    ).scalar_one()
    if row:
        raise StoreError(
            f"role {role} is a superuser, bypasses row-level security, replicates, or is a "
            "member of another role: it cannot be a project's role; drop it first"
        )


def _scram_verifier(conn: Connection, role: str, password: str) -> str:
    """libpq's SCRAM-SHA-256 verifier of the password (what `\\password` sends)."""
    dbapi = conn.connection.dbapi_connection
    pgconn = getattr(dbapi, "pgconn", None)
    if pgconn is None:
        raise StoreError("project roles need the psycopg driver (postgresql+psycopg://…)")
    verifier: bytes = pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    return verifier.decode()


def _literal(conn: Connection, value: str) -> str:
    """A quoted SQL string literal (DDL takes no bound parameters)."""
    process = String().literal_processor(dialect=conn.dialect)
    assert process is not None
    return str(process(value))


def _is_postgresql(url: str) -> bool:
    try:
        return make_url(url).get_backend_name() == "postgresql"
    except SQLAlchemyError:
        return False
