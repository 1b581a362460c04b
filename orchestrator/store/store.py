"""The durable state store: campaigns, tasks, append-only events, control requests.

SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL. Every write that reports a
finished task commits before the caller is told, so nothing reported is ever lost.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from orchestrator.errors import CampaignNotFound, InvalidRequest, StoreError
from orchestrator.states import CAMPAIGN_TERMINAL, CampaignState, TaskState
from orchestrator.store.records import (
    CampaignRecord,
    Control,
    EventRecord,
    EventWrite,
    OutboxItem,
    TaskRecord,
    WriteBatch,
)
from orchestrator.store.tables import campaigns, controls, events, outbox, tasks

MIGRATIONS = Path(__file__).parent / "migrations"
SINGLE = -1  # the `point` of a task of a step without foreach


def new_campaign_id() -> str:
    # time-ordered prefix keeps ids roughly sortable; the random part avoids collisions
    return f"{int(time.time()):x}{secrets.token_hex(4)}"


def runner_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def runner_alive(runner: str | None, lease_until: float | None, now: float) -> bool:
    """A runner is alive while its lease lasts, unless it is a dead process on this host."""
    if not runner or lease_until is None or lease_until < now:
        return False
    host, _, rest = runner.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


class Store:
    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.engine: Engine = _make_engine(url, echo)
        self.dialect = self.engine.dialect.name

    # ----------------------------------------------------------------- schema
    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already)."""
        script = ScriptDirectory(str(MIGRATIONS))
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == script.get_current_head():
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"state store unavailable: {exc.orig}") from exc

    # -------------------------------------------------------------- campaigns
    def create_campaign(
        self,
        *,
        spec: dict[str, Any],
        name: str,
        points: int,
        results_url: str,
        project: str = "local/default",
        owner: str | None = None,
        idempotency_key: str | None = None,
        import_paths: list[str] | None = None,
        campaign_id: str | None = None,
    ) -> str:
        now = time.time()
        campaign_id = campaign_id or new_campaign_id()
        try:
            with self._tx() as conn:
                conn.execute(
                    insert(campaigns).values(
                        id=campaign_id,
                        project=project,
                        name=name,
                        owner=owner,
                        state=CampaignState.ACCEPTED,
                        spec=spec,
                        points=points,
                        results_url=results_url,
                        created_at=now,
                        updated_at=now,
                        last_event_seq=0,
                        idempotency_key=idempotency_key,
                        import_paths=import_paths,
                    )
                )
                self._append_events(
                    conn,
                    campaign_id,
                    [
                        EventWrite(
                            now,
                            "campaign",
                            state=CampaignState.ACCEPTED,
                            message=f"{points} point(s)",
                        )
                    ],
                )
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = self.find_by_idempotency_key(project, idempotency_key)
            if existing is None:
                raise
            return existing
        return campaign_id

    def find_by_idempotency_key(self, project: str, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(campaigns.c.id).where(
                    campaigns.c.project == project, campaigns.c.idempotency_key == key
                )
            ).scalar_one_or_none()

    def get_campaign(self, campaign_id: str) -> CampaignRecord:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(campaigns).where(campaigns.c.id == campaign_id))
                .mappings()
                .first()
            )
        if row is None:
            raise CampaignNotFound(campaign_id)
        return _campaign(row)

    def list_campaigns(
        self,
        *,
        project: str | None = None,
        state: str | None = None,
        name: str | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[CampaignRecord]:
        """Newest first; `before` is the (created_at, id) of the last row of a previous page."""
        query = select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
        if project is not None:
            query = query.where(campaigns.c.project == project)
        if state is not None:
            query = query.where(campaigns.c.state == state)
        if name is not None:
            query = query.where(campaigns.c.name == name)
        if before is not None:
            created, cid = before
            query = query.where(
                (campaigns.c.created_at < created)
                | and_(campaigns.c.created_at == created, campaigns.c.id < cid)
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [_campaign(row) for row in rows]

    def task_counts(self, campaign_id: str) -> dict[str, dict[str, int]]:
        """{step: {state: count}} over the task rows (pending tasks have no row yet)."""
        query = (
            select(tasks.c.step, tasks.c.state, func.count())
            .where(tasks.c.campaign_id == campaign_id)
            .group_by(tasks.c.step, tasks.c.state)
        )
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for step, state, n in conn.execute(query):
                counts.setdefault(step, {})[state] = n
        return counts

    def set_campaign_state(self, campaign_id: str, state: str, message: str | None = None) -> None:
        now = time.time()
        with self._tx() as conn:
            values: dict[str, Any] = {"state": state, "updated_at": now}
            if state in CAMPAIGN_TERMINAL:
                values["finished_at"] = now
            if message is not None:
                values["message"] = message
            conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))
            self._append_events(
                conn, campaign_id, [EventWrite(now, "campaign", state=state, message=message)]
            )

    def delete_campaign(self, campaign_id: str) -> None:
        record = self.get_campaign(campaign_id)
        if record.state not in CAMPAIGN_TERMINAL:
            raise InvalidRequest(f"campaign {campaign_id} is {record.state}; cancel it first")
        with self._tx() as conn:
            for table in (controls, events, tasks):
                conn.execute(table.delete().where(table.c.campaign_id == campaign_id))
            conn.execute(campaigns.delete().where(campaigns.c.id == campaign_id))

    # ----------------------------------------------------------- runner lease
    def claim(self, campaign_id: str, runner: str, lease_seconds: float) -> str | None:
        """Take the campaign for `runner` unless a live runner holds it; None on success,
        else the holder's identity."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                select(campaigns.c.runner, campaigns.c.lease_until, campaigns.c.state).where(
                    campaigns.c.id == campaign_id
                )
            ).first()
            if row is None:
                raise CampaignNotFound(campaign_id)
            if row.runner != runner and runner_alive(row.runner, row.lease_until, now):
                return str(row.runner)
            taken = conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .where(_same_or_null(campaigns.c.runner, row.runner))
                .values(runner=runner, lease_until=now + lease_seconds, updated_at=now)
            ).rowcount
        return None if taken == 1 else "another runner"

    def heartbeat(self, campaign_id: str, runner: str, lease_seconds: float) -> bool:
        with self._tx() as conn:
            return bool(
                conn.execute(
                    update(campaigns)
                    .where(campaigns.c.id == campaign_id, campaigns.c.runner == runner)
                    .values(lease_until=time.time() + lease_seconds)
                ).rowcount
            )

    def release(self, campaign_id: str, runner: str) -> None:
        with self._tx() as conn:
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.runner == runner)
                .values(runner=None, lease_until=None)
            )

    def unfinished_campaigns(self, project: str | None = None) -> list[CampaignRecord]:
        query = (
            select(campaigns)
            .where(campaigns.c.state.in_([CampaignState.ACCEPTED, CampaignState.RUNNING]))
            .order_by(campaigns.c.created_at)
        )
        if project is not None:
            query = query.where(campaigns.c.project == project)
        with self.engine.connect() as conn:
            return [_campaign(row) for row in conn.execute(query).mappings()]

    def last_activity(self, now: float) -> dict[str, float]:
        """Per project, when a campaign last ran: `now` while one is accepted or running,
        else the latest finish (idle clusters are torn down from this)."""
        busy = select(campaigns.c.project).where(
            campaigns.c.state.in_([CampaignState.ACCEPTED, CampaignState.RUNNING])
        )
        latest = select(
            campaigns.c.project,
            func.max(func.coalesce(campaigns.c.finished_at, campaigns.c.updated_at)),
        ).group_by(campaigns.c.project)
        with self.engine.connect() as conn:
            found = {row[0]: float(row[1]) for row in conn.execute(latest)}
            found.update({row[0]: now for row in conn.execute(busy.distinct())})
        return found

    # ------------------------------------------------------------------ tasks
    def tasks_in_range(self, campaign_id: str, start: int, stop: int) -> list[TaskRecord]:
        """Task rows of points start..stop-1 (foreach steps only)."""
        query = select(tasks).where(
            tasks.c.campaign_id == campaign_id, tasks.c.point >= start, tasks.c.point < stop
        )
        with self.engine.connect() as conn:
            return [_task(row) for row in conn.execute(query).mappings()]

    def single_tasks(self, campaign_id: str) -> list[TaskRecord]:
        query = select(tasks).where(tasks.c.campaign_id == campaign_id, tasks.c.point == SINGLE)
        with self.engine.connect() as conn:
            return [_task(row) for row in conn.execute(query).mappings()]

    def max_point(self, campaign_id: str) -> int:
        """The highest point with a task row (-1 if none)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(tasks.c.point)).where(tasks.c.campaign_id == campaign_id)
            ).scalar()
        return -1 if value is None else int(value)

    def get_task(self, campaign_id: str, step: str, point: int | None) -> TaskRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(tasks).where(
                        tasks.c.campaign_id == campaign_id,
                        tasks.c.step == step,
                        tasks.c.point == (SINGLE if point is None else point),
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _task(row)

    def list_tasks(
        self,
        campaign_id: str,
        *,
        step: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        after: tuple[str, int] | None = None,
    ) -> list[TaskRecord]:
        query = select(tasks).where(tasks.c.campaign_id == campaign_id)
        if step is not None:
            query = query.where(tasks.c.step == step)
        if state is not None:
            query = query.where(tasks.c.state == state)
        if after is not None:
            query = query.where(
                (tasks.c.step > after[0]) | and_(tasks.c.step == after[0], tasks.c.point > after[1])
            )
        query = query.order_by(tasks.c.step, tasks.c.point).limit(limit)
        with self.engine.connect() as conn:
            return [_task(row) for row in conn.execute(query).mappings()]

    def succeeded_results(
        self, campaign_id: str, step: str, points: Sequence[int]
    ) -> dict[int, tuple[Any, str | None]]:
        query = select(tasks.c.point, tasks.c.result, tasks.c.result_url).where(
            tasks.c.campaign_id == campaign_id,
            tasks.c.step == step,
            tasks.c.state == TaskState.SUCCEEDED,
            tasks.c.point.in_(list(points)),
        )
        with self.engine.connect() as conn:
            return {int(p): (r, u) for p, r, u in conn.execute(query)}

    # ----------------------------------------------------------------- writes
    def apply(self, batch: WriteBatch) -> None:
        """Write a runner's batch of task changes and events in one transaction."""
        now = time.time()
        with self._tx() as conn:
            if batch.tasks:
                self._upsert_tasks(conn, batch)
            new_events = list(batch.events)
            if batch.campaign_state is not None:
                change = EventWrite(
                    now, "campaign", state=batch.campaign_state, message=batch.campaign_message
                )
                if batch.campaign_state == CampaignState.RUNNING:
                    new_events.insert(0, change)
                else:
                    new_events.append(change)
            if new_events:
                self._append_events(conn, batch.campaign_id, new_events)
            if batch.outbox:
                conn.execute(
                    insert(outbox),
                    [
                        {
                            "campaign_id": batch.campaign_id,
                            "kind": kind,
                            "payload": payload,
                            "created_at": now,
                            "attempts": 0,
                            "next_at": now,
                        }
                        for kind, payload in batch.outbox
                    ],
                )
            if batch.campaign_state is not None:
                values: dict[str, Any] = {"state": batch.campaign_state, "updated_at": now}
                if batch.campaign_state == CampaignState.RUNNING:
                    values["started_at"] = now
                    values["finished_at"] = None
                if batch.campaign_state in CAMPAIGN_TERMINAL:
                    values["finished_at"] = now
                if batch.campaign_message is not None:
                    values["message"] = batch.campaign_message
                conn.execute(
                    update(campaigns).where(campaigns.c.id == batch.campaign_id).values(**values)
                )

    def _upsert_tasks(self, conn: Connection, batch: WriteBatch) -> None:
        rows = [
            {"campaign_id": batch.campaign_id, **task.__dict__} for task in batch.tasks.values()
        ]
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
        stmt = dialect_insert(tasks)
        columns = [c for c in rows[0] if c not in ("campaign_id", "step", "point")]
        stmt = stmt.on_conflict_do_update(
            index_elements=["campaign_id", "step", "point"],
            set_={c: stmt.excluded[c] for c in columns},
        )
        conn.execute(stmt, rows)

    def _append_events(self, conn: Connection, campaign_id: str, new: Sequence[EventWrite]) -> None:
        last = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(last_event_seq=campaigns.c.last_event_seq + len(new))
            .returning(campaigns.c.last_event_seq)
        ).scalar_one()
        first = last - len(new) + 1
        conn.execute(
            insert(events),
            [
                {"campaign_id": campaign_id, "seq": first + i, **e.__dict__}
                for i, e in enumerate(new)
            ],
        )

    def events(
        self, campaign_id: str, *, after: int = 0, limit: int = 1000, kind: str | None = None
    ) -> list[EventRecord]:
        query = (
            select(events)
            .where(events.c.campaign_id == campaign_id, events.c.seq > after)
            .order_by(events.c.seq)
            .limit(limit)
        )
        if kind is not None:
            query = query.where(events.c.kind == kind)
        with self.engine.connect() as conn:
            return [
                EventRecord(**{k: v for k, v in row.items() if k != "campaign_id"})
                for row in conn.execute(query).mappings()
            ]

    # --------------------------------------------------------------- controls
    def request_cancel(
        self, campaign_id: str, *, step: str | None = None, point: int | None = None
    ) -> None:
        record = self.get_campaign(campaign_id)
        if record.state in CAMPAIGN_TERMINAL:
            raise InvalidRequest(f"campaign {campaign_id} is already {record.state}")
        now = time.time()
        scope = "campaign" if step is None and point is None else "tasks"
        with self._tx() as conn:
            conn.execute(
                insert(controls).values(
                    campaign_id=campaign_id,
                    action="cancel",
                    step=step,
                    point=point,
                    created_at=now,
                    active=1,
                )
            )
            self._append_events(
                conn,
                campaign_id,
                [
                    EventWrite(
                        now,
                        "cancel-requested",
                        step=step,
                        point=point,
                        message=f"cancel {scope} requested",
                    )
                ],
            )
            if scope == "campaign" and not runner_alive(record.runner, record.lease_until, now):
                # nobody runs it: cancelling is immediate
                conn.execute(
                    update(campaigns)
                    .where(campaigns.c.id == campaign_id)
                    .values(state=CampaignState.CANCELLED, updated_at=now, finished_at=now)
                )
                conn.execute(
                    update(tasks)
                    .where(
                        tasks.c.campaign_id == campaign_id,
                        tasks.c.state.in_([TaskState.QUEUED, TaskState.RUNNING, TaskState.PENDING]),
                    )
                    .values(state=TaskState.CANCELLED, finished_at=now)
                )
                self._append_events(
                    conn, campaign_id, [EventWrite(now, "campaign", state=CampaignState.CANCELLED)]
                )

    def active_controls(self, campaign_id: str, after: int = 0) -> list[Control]:
        query = (
            select(controls)
            .where(
                controls.c.campaign_id == campaign_id, controls.c.active == 1, controls.c.id > after
            )
            .order_by(controls.c.id)
        )
        with self.engine.connect() as conn:
            return [Control(r.id, r.action, r.step, r.point) for r in conn.execute(query)]

    def extend(
        self, campaign_id: str, spec: dict[str, Any], points: int, rerun: Sequence[str]
    ) -> int:
        """Store a campaign's spec with more points (in one transaction) and tell its runner.

        A finished campaign is reopened (`accepted`) and the tasks of `rerun` (fan-in steps,
        which must see the new points) go back to pending; nothing else that finished runs
        again. Returns the number of points added.
        """
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                select(campaigns.c.state, campaigns.c.points).where(campaigns.c.id == campaign_id)
            ).first()
            if row is None:
                raise CampaignNotFound(campaign_id)
            if row.state == CampaignState.CANCELLED:
                raise InvalidRequest(f"campaign {campaign_id} is cancelled; restart it first")
            added = points - int(row.points)
            if added <= 0:
                raise InvalidRequest("an extension must add points")
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(spec=spec, points=points, updated_at=now)
            )
            reopened = row.state in CAMPAIGN_TERMINAL
            if reopened:
                self._reopen(conn, campaign_id, rerun, now)
            conn.execute(
                insert(controls).values(
                    campaign_id=campaign_id, action="extend", created_at=now, active=1
                )
            )
            message = f"extended: {added} point(s) added, {points} in all"
            self._append_events(conn, campaign_id, [EventWrite(now, "extended", message=message)])
        return added

    def reopen(self, campaign_id: str, rerun: Sequence[str], message: str) -> None:
        """Back to `accepted` with `rerun`'s tasks pending (points were added as it ended)."""
        now = time.time()
        with self._tx() as conn:
            self._reopen(conn, campaign_id, rerun, now)
            self._append_events(
                conn,
                campaign_id,
                [EventWrite(now, "campaign", state=CampaignState.ACCEPTED, message=message)],
            )

    def _reopen(self, conn: Connection, campaign_id: str, rerun: Sequence[str], now: float) -> None:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(state=CampaignState.ACCEPTED, finished_at=None, message=None, updated_at=now)
        )
        if rerun:
            conn.execute(
                update(tasks)
                .where(tasks.c.campaign_id == campaign_id, tasks.c.step.in_(list(rerun)))
                .values(state=TaskState.PENDING, error=None, finished_at=None)
            )

    # ---------------------------------------------------------------- outbox
    def due_registrations(self, now: float, limit: int = 200) -> list[OutboxItem]:
        query = (
            select(outbox)
            .where(outbox.c.done_at.is_(None), outbox.c.next_at <= now)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                OutboxItem(r.id, r.campaign_id, r.kind, r.payload, r.attempts)
                for r in conn.execute(query)
            ]

    def registered(self, ids: Sequence[int], now: float) -> None:
        if ids:
            with self._tx() as conn:
                conn.execute(
                    update(outbox).where(outbox.c.id.in_(list(ids))).values(done_at=now, error=None)
                )

    def registration_failed(
        self, ids: Sequence[int], error: str, next_at: float | None, now: float
    ) -> None:
        """A failed attempt: try again at `next_at`, or never (None: rejected for good)."""
        if not ids:
            return
        values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "error": error[:2000]}
        if next_at is None:
            values["done_at"] = now
        else:
            values["next_at"] = next_at
        with self._tx() as conn:
            conn.execute(update(outbox).where(outbox.c.id.in_(list(ids))).values(**values))

    def outbox_backlog(self, campaign_id: str | None = None) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
        if campaign_id is not None:
            query = query.where(outbox.c.campaign_id == campaign_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def restart(self, campaign_id: str) -> int:
        """Put failed and cancelled tasks back to pending; returns how many."""
        record = self.get_campaign(campaign_id)
        now = time.time()
        if runner_alive(record.runner, record.lease_until, now):
            raise InvalidRequest(f"campaign {campaign_id} is still running ({record.runner})")
        with self._tx() as conn:
            n = conn.execute(
                update(tasks)
                .where(
                    tasks.c.campaign_id == campaign_id,
                    tasks.c.state.in_([TaskState.FAILED, TaskState.CANCELLED]),
                )
                .values(state=TaskState.PENDING, error=None, finished_at=None)
            ).rowcount
            conn.execute(
                update(controls).where(controls.c.campaign_id == campaign_id).values(active=0)
            )
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(
                    state=CampaignState.ACCEPTED, updated_at=now, finished_at=None, message=None
                )
            )
            self._append_events(
                conn,
                campaign_id,
                [
                    EventWrite(
                        now,
                        "campaign",
                        state=CampaignState.ACCEPTED,
                        message=f"restarted: {n} failed/cancelled task(s) back to pending",
                    )
                ],
            )
        return int(n)


def _same_or_null(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == bindparam("prev", value)


def _campaign(row: Any) -> CampaignRecord:
    return CampaignRecord(**{k: row[k] for k in CampaignRecord.__dataclass_fields__})


def _task(row: Any) -> TaskRecord:
    values = {k: row[k] for k in TaskRecord.__dataclass_fields__}
    if values["point"] == SINGLE:
        values["point"] = None
    return TaskRecord(**values)


def _make_engine(url: str, echo: bool) -> Engine:
    try:
        if url.startswith("sqlite"):
            database = url.split("///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, echo=echo, connect_args={"timeout": 60})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, echo=echo, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot use state store {_redact(url)}: {exc}") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not only a crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"
