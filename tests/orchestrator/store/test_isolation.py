"""A project's instance role reaches only its project's rows (PostgreSQL row-level security).

Real PostgreSQL: the test server's role owns the tables (as the front door's does) and has
CREATEROLE (deploy/postgres/up), so it makes each project's role; every check below
connects as that role with the URL `grant_project` returned, and talks raw SQL, not only
through the store.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from cluster import LocalCompute
from orchestrator.errors import StoreError
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.spec import parse_document
from orchestrator.store import EventWrite, Store, TaskWrite, WriteBatch
from orchestrator.store._database import MIGRATIONS
from orchestrator.store.isolation import (
    ISOLATED_TABLES,
    grant_project,
    project_database_url,
    revoke_project,
    role_name,
)
from orchestrator.store.tables import metadata
from tests.conftest import fast_engine
from tests.fixtures.project_roles import A, B
from tests.helpers import spec_doc, wait_for


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db_url=url,
        results_url=str(tmp_path / "results"),
        engine=fast_engine(),
    )


def _seed(store: Store, project: str) -> str:
    """A campaign of `project` with a row in every table that holds a project's data."""
    cid = store.create_campaign(
        spec={"name": "s", "steps": {"a": {"foreach": True}}},
        name="s",
        points=3,
        results_url="/tmp/r",
        project=project,
    )
    batch = WriteBatch(cid)
    batch.tasks[("a", 0)] = TaskWrite("a", 0, "succeeded", 1, result={"v": 1})
    batch.events.append(EventWrite(time.time(), "task", "a", 0, "succeeded", 1))
    batch.outbox.append(("task", {"step": "a"}))
    store.apply(batch)
    store.request_cancel(cid, step="a", point=1)
    return cid


def _counts(engine: Engine, cid: str, tables: tuple[str, ...] = ISOLATED_TABLES) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(
                    f"SELECT count(*) FROM {table} WHERE "
                    + ("id" if table == "campaigns" else "campaign_id")
                    + " = :c"
                ),
                {"c": cid},
            ).scalar_one()
            for table in tables
        }


def _refused(engine: Engine, sql: str, **params: object) -> None:
    """`sql` fails with PostgreSQL's insufficient_privilege (42501)."""
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert getattr(caught.value.orig, "sqlstate", None) == "42501", caught.value


@pytest.mark.postgres
def test_a_project_role_cannot_read_or_write_another_projects_rows(owner_url: str):
    owner = Store(owner_url)
    owner.migrate()
    mine, theirs = _seed(owner, A), _seed(owner, B)
    owner_engine = create_engine(owner_url, poolclass=NullPool)
    everything = _counts(owner_engine, theirs)
    assert everything == _counts(owner_engine, mine) and 0 not in everything.values()
    role_a = create_engine(grant_project(owner_url, A).url, poolclass=NullPool)
    grant_project(owner_url, B)
    try:
        assert _counts(role_a, mine) == everything
        assert _counts(role_a, theirs) == dict.fromkeys(ISOLATED_TABLES, 0)
        with role_a.begin() as conn:
            for table in ISOLATED_TABLES:
                key = "id" if table == "campaigns" else "campaign_id"
                changed = conn.execute(
                    text(f"UPDATE {table} SET {key} = {key} WHERE {key} = :c"), {"c": theirs}
                ).rowcount
                deleted = conn.execute(
                    text(f"DELETE FROM {table} WHERE {key} = :c"), {"c": theirs}
                ).rowcount
                assert (changed, deleted) == (0, 0), table
            assert conn.execute(text("SELECT project FROM project_roles")).scalars().all() == [A]
        # writing a row into B: refused by the policies' check, whatever the table
        _refused(
            role_a,
            "INSERT INTO campaigns (id, project, name, state, spec, points, results_url,"
            " created_at, updated_at, last_event_seq) VALUES"
            " ('x1', :p, 'n', 'accepted', '{}', 1, '/r', 0, 0, 0)",
            p=B,
        )
        _refused(role_a, "UPDATE campaigns SET project = :p WHERE id = :c", p=B, c=mine)
        _refused(
            role_a,
            "INSERT INTO tasks (campaign_id, step, point, state, attempt)"
            " VALUES (:c, 'a', 7, 'queued', 1)",
            c=theirs,
        )
        _refused(
            role_a,
            "INSERT INTO events (campaign_id, seq, time, kind) VALUES (:c, 99, 0, 'x')",
            c=theirs,
        )
        _refused(
            role_a,
            "INSERT INTO controls (campaign_id, action, created_at, active)"
            " VALUES (:c, 'cancel', 0, 1)",
            c=theirs,
        )
        _refused(
            role_a,
            "INSERT INTO outbox (campaign_id, kind, payload, created_at, attempts, next_at)"
            " VALUES (:c, 'task', '{}', 0, 0, 0)",
            c=theirs,
        )
        _refused(
            role_a, "UPDATE tasks SET campaign_id = :t WHERE campaign_id = :m", t=theirs, m=mine
        )
        _refused(
            role_a,
            "INSERT INTO task_counts (campaign_id, step, state, n) VALUES (:c, 'a', 'queued', 5)",
            c=theirs,
        )
        # its own task rows keep its own counts (the triggers run as the project's role)
        with role_a.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tasks (campaign_id, step, point, state, attempt)"
                    " VALUES (:c, 'a', 9, 'queued', 1)"
                ),
                {"c": mine},
            )
        role_a_store = Store(role_a.url.render_as_string(hide_password=False))
        assert role_a_store.task_counts(mine) == {"a": {"succeeded": 1, "queued": 1}}
        assert role_a_store.task_counts(theirs) == {}
        role_a_store.close()
        # ...nor around the policies: the mapping, the schema, TRUNCATE, another role
        _refused(role_a, "UPDATE project_roles SET project = :p", p=B)
        _refused(role_a, "INSERT INTO project_roles VALUES ('r', 'x/y', 0)")
        _refused(role_a, "ALTER TABLE campaigns DISABLE ROW LEVEL SECURITY")
        _refused(role_a, "DROP POLICY own_project ON tasks")
        _refused(role_a, "TRUNCATE events")
        _refused(role_a, f"SET ROLE {grant_project(owner_url, B).role}")
    finally:
        role_a.dispose()
    assert _counts(owner_engine, theirs) == everything  # untouched
    owner_engine.dispose()
    owner.close()


@pytest.mark.postgres
def test_an_instance_runs_its_projects_campaign_and_sees_no_other(
    owner_url: str, tmp_path: Path, compute: LocalCompute
):
    front_door = Service(_settings(owner_url, tmp_path / "front"))
    doc = spec_doc(
        "iso", {"sq": {"run": "tests.workloads:square", "foreach": True}}, x={"range": [0, 6]}
    )
    slow = spec_doc(
        "slow",
        {"wait": {"run": "tests.workloads:slow", "foreach": True, "with": {"seconds": 2}}},
        x={"range": [0, 40]},
    )
    mine = front_door.submit(parse_document(doc), project=A, import_paths=[])
    to_cancel = front_door.submit(parse_document(slow), project=A, import_paths=[])
    theirs = front_door.submit(parse_document(doc), project=B, import_paths=[])
    url = project_database_url(front_door.settings, A)
    assert "orch_p_" in url
    instance = Service(_settings(url, tmp_path / "instance"))  # migrate(): a no-op it may read
    runner = Runner(instance, lambda project: compute, projects={A}, poll_interval=0.1)
    try:
        assert {c.id for c in instance.store.list_campaigns()} == {mine, to_cancel}
        assert {c.id for c in instance.store.unfinished_campaigns()} == {mine, to_cancel}
        with pytest.raises(StoreError, match=r"refused the write.*row-level security"):
            instance.submit(parse_document(doc), project=B, import_paths=[])
        submitted = instance.submit(parse_document(doc), project=A, import_paths=[])
        runner.start()
        # cancelled while it runs (its 40 x 2 s share the 2 workers with the others; waiting
        # for the others first could find it finished, whichever the workers ran first)
        wait_for(lambda: instance.status(to_cancel)["counts"].get("running"), what="a task")
        instance.cancel(to_cancel)  # a control, through A's role
        wait_for(lambda: instance.status(to_cancel)["state"] == "cancelled", what="cancel")
        wait_for(
            lambda: {instance.status(c)["state"] for c in (mine, submitted)} == {"succeeded"},
            what="A's campaigns",
        )
        wait_for(lambda: instance.store.outbox_backlog() == 0, what="registrations sent")
        assert [t.point for t in instance.store.list_tasks(mine)] == list(range(6))
        assert instance.store.events(mine)[-1].state == "succeeded"
    finally:
        runner.computes = {}  # the shared test cluster is not the runner's to close
        runner.close()
        instance.close()
    assert front_door.status(theirs)["state"] == "accepted"  # not A's to run
    assert front_door.store.events(theirs)[-1].seq == 1
    front_door.close()


@pytest.mark.postgres
def test_granting_needs_the_migrated_schema(owner_url: str):
    with pytest.raises(StoreError, match="not migrated: run `orchestrator db migrate`"):
        grant_project(owner_url, A)


@pytest.mark.postgres
def test_an_instance_does_not_migrate_the_schema(owner_url: str):
    owner = Store(owner_url)
    owner.migrate()
    url = grant_project(owner_url, A).url
    with owner.engine.begin() as conn:  # as if the code were newer than the schema
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    instance = Store(url)
    with pytest.raises(StoreError, match=r"revision 0003.*run `orchestrator db migrate`"):
        instance.migrate()
    instance.close()
    owner.close()


@pytest.mark.postgres
def test_a_role_that_could_become_another_is_refused(owner_url: str):
    owner = Store(owner_url)
    owner.migrate()
    a, b = grant_project(owner_url, A), grant_project(owner_url, B)
    with owner.engine.begin() as conn:  # B's role made a member of A's: it could SET ROLE
        conn.execute(text(f"GRANT {a.role} TO {b.role}"))
    with pytest.raises(StoreError, match="member of another role"):
        grant_project(owner_url, B)
    owner.close()


@pytest.mark.postgres
def test_the_front_doors_role_sees_and_writes_every_project(owner_url: str, tmp_path: Path):
    front_door = Service(_settings(owner_url, tmp_path))
    store = front_door.store
    grant_project(owner_url, A)
    ids = {_seed(store, A), _seed(store, B)}
    assert {c.id for c in store.list_campaigns()} == ids
    assert {c.project for c in store.list_campaigns()} == {A, B}
    assert {i.campaign_id for i in store.due_registrations(time.time())} == ids
    page = store.list_campaigns(project=B, limit=1)
    assert [c.project for c in page] == [B]
    front_door.close()


@pytest.mark.postgres
def test_granting_again_refreshes_the_role_and_keeps_one(owner_url: str, tmp_path: Path):
    owner = Store(owner_url)
    owner.migrate()
    cid, theirs = _seed(owner, A), _seed(owner, B)
    first, second = grant_project(owner_url, A), grant_project(owner_url, A)
    assert first.role == second.role == role_name(first.database, A)
    assert first.url != second.url  # a new password each time
    assert second.url not in repr(second) and "password" not in repr(second).lower()
    engine = create_engine(second.url, poolclass=NullPool)
    assert _counts(engine, cid)["tasks"] == 1
    assert _counts(engine, theirs)["tasks"] == 0
    with pytest.raises(DBAPIError, match="password authentication failed"):
        create_engine(first.url, poolclass=NullPool).connect()  # the old password is gone
    engine.dispose()
    admin = create_engine(owner_url, poolclass=NullPool)
    with admin.connect() as conn:
        mapped = conn.execute(text("SELECT role_name, project FROM project_roles")).all()
        attributes = conn.execute(
            text(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit"
                " FROM pg_roles WHERE rolname = :r"
            ),
            {"r": second.role},
        ).one()
    admin.dispose()
    assert [tuple(row) for row in mapped] == [(second.role, A)]
    assert tuple(attributes) == (False, False, False, False, False)
    assert revoke_project(owner_url, A) and not revoke_project(owner_url, A)
    owner.close()


@pytest.mark.postgres
def test_migrating_an_existing_database_keeps_its_rows_and_isolates_them(owner_url: str):
    engine = create_engine(owner_url, poolclass=NullPool)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")  # the schema before isolation
    old = Store(owner_url)
    mine, theirs = _seed(old, A), _seed(old, B)
    tables = tuple(t for t in ISOLATED_TABLES if t != "task_counts")  # 0006's table
    before = {cid: _counts(engine, cid, tables) for cid in (mine, theirs)}
    old.migrate()
    # the rows kept, and the task counts made from them (one succeeded task each)
    after = {cid: {**before[cid], "task_counts": 1} for cid in (mine, theirs)}
    assert {cid: _counts(engine, cid) for cid in (mine, theirs)} == after
    assert old.task_counts(mine) == {"a": {"succeeded": 1}}
    with engine.connect() as conn:
        secured = conn.execute(
            text("SELECT relname FROM pg_class WHERE relrowsecurity AND relkind = 'r'")
        ).scalars()
        assert set(secured) == set(metadata.tables) == {*ISOLATED_TABLES, "project_roles"}
    role_a = create_engine(grant_project(owner_url, A).url, poolclass=NullPool)
    assert _counts(role_a, mine) == after[mine]
    assert _counts(role_a, theirs) == dict.fromkeys(ISOLATED_TABLES, 0)
    role_a.dispose()
    engine.dispose()
    old.close()


def test_on_sqlite_the_instance_keeps_the_stores_url(tmp_path: Path):
    settings = _settings(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    assert project_database_url(settings, A) == settings.database_url
    with pytest.raises(StoreError, match="need PostgreSQL"):
        grant_project(settings.database_url, A)


def test_a_malformed_project_is_refused_by_name(tmp_path: Path):
    settings = _settings(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    with pytest.raises(StoreError, match="'a/b/c'"):
        project_database_url(settings, "a/b/c")
