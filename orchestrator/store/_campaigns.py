"""Campaign rows: create (idempotently), read, list, change state, restart, reopen, delete.

Every state change appends its event in the same transaction. Writes that a caller
decided on from a row it read earlier take that row (`seen`) and apply only while the
columns the decision rested on are unchanged (`unchanged_since`); they report whether
they applied, and the caller judges again on the new row.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.errors import CampaignNotFound
from orchestrator.states import CAMPAIGN_TERMINAL, CampaignState, TaskState
from orchestrator.store._database import Database
from orchestrator.store._events import append_events
from orchestrator.store._lease import fence
from orchestrator.store.records import CampaignRecord, EventWrite
from orchestrator.store.tables import campaigns, controls, events, tasks

UNFINISHED = (CampaignState.ACCEPTED, CampaignState.RUNNING)


def new_campaign_id() -> str:
    # time-ordered prefix keeps ids roughly sortable; the random part avoids collisions
    return f"{int(time.time()):x}{secrets.token_hex(4)}"


def create(
    db: Database,
    campaign_id: str | None,
    project: str,
    owner: str | None,
    idempotency_key: str | None,
    *,
    spec: dict[str, Any],
    name: str,
    points: int,
    results_url: str,
    import_paths: list[str] | None,
) -> str:
    """Insert an `accepted` campaign and its first event; with an idempotency key already
    used in the project, the id of the campaign it made instead."""
    now = time.time()
    campaign_id = campaign_id or new_campaign_id()
    try:
        with db.transaction() as conn:
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
            message = f"{points} point(s)"
            accepted = EventWrite(now, "campaign", state=CampaignState.ACCEPTED, message=message)
            append_events(conn, campaign_id, [accepted])
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = find_by_idempotency_key(db, project, idempotency_key)
        if existing is None:
            raise
        return existing
    return campaign_id


def find_by_idempotency_key(db: Database, project: str, key: str) -> str | None:
    with db.connect() as conn:
        return conn.execute(
            select(campaigns.c.id).where(
                campaigns.c.project == project, campaigns.c.idempotency_key == key
            )
        ).scalar_one_or_none()


def get(db: Database, campaign_id: str) -> CampaignRecord:
    with db.connect() as conn:
        row = (
            conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).mappings().first()
        )
    if row is None:
        raise CampaignNotFound(campaign_id)
    return campaign_record(row)


def listed(
    db: Database,
    *,
    project: str | None,
    state: str | None,
    name: str | None,
    limit: int,
    before: tuple[float, str] | None,
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
    with db.connect() as conn:
        rows = conn.execute(query.limit(limit)).mappings().all()
    return [campaign_record(row) for row in rows]


def unfinished(db: Database, project: str | None) -> list[CampaignRecord]:
    query = (
        select(campaigns).where(campaigns.c.state.in_(UNFINISHED)).order_by(campaigns.c.created_at)
    )
    if project is not None:
        query = query.where(campaigns.c.project == project)
    with db.connect() as conn:
        return [campaign_record(row) for row in conn.execute(query).mappings()]


def last_activity(db: Database, now: float) -> dict[str, float]:
    """Per project, when a campaign last ran: `now` while one is accepted or running,
    else the latest finish (idle clusters are torn down from this)."""
    busy = select(campaigns.c.project).where(campaigns.c.state.in_(UNFINISHED))
    latest = select(
        campaigns.c.project,
        func.max(func.coalesce(campaigns.c.finished_at, campaigns.c.updated_at)),
    ).group_by(campaigns.c.project)
    with db.connect() as conn:
        found = {row[0]: float(row[1]) for row in conn.execute(latest)}
        found.update({row[0]: now for row in conn.execute(busy.distinct())})
    return found


def set_state(
    db: Database, campaign_id: str, state: str, message: str | None, runner: str | None = None
) -> None:
    now = time.time()
    with db.transaction() as conn:
        if runner is not None:
            fence(conn, campaign_id, runner, now)
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(**state_values(state, message, now))
        )
        append_events(
            conn, campaign_id, [EventWrite(now, "campaign", state=state, message=message)]
        )


def state_values(state: str, message: str | None, now: float) -> dict[str, Any]:
    """The columns a change of the campaign's state sets."""
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state in CAMPAIGN_TERMINAL:
        values["finished_at"] = now
    if message is not None:
        values["message"] = message
    return values


def delete(db: Database, campaign_id: str, seen: CampaignRecord) -> bool:
    """Delete the campaign and its rows, unless its state changed since `seen` (False)."""
    with db.transaction() as conn:
        # the guarded no-op update locks the row, so nothing changes it before the delete
        if not _touch(conn, campaign_id, seen, "state"):
            return False
        for table in (controls, events, tasks):
            conn.execute(table.delete().where(table.c.campaign_id == campaign_id))
        conn.execute(campaigns.delete().where(campaigns.c.id == campaign_id))
    return True


def restart(db: Database, campaign_id: str, seen: CampaignRecord) -> int | None:
    """Failed and cancelled tasks back to pending and the campaign `accepted`, unless its
    lease changed since `seen` (None: a runner took it meanwhile); returns how many."""
    now = time.time()
    with db.transaction() as conn:
        restarted = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, *unchanged_since(seen, "runner", "lease_until"))
            .values(state=CampaignState.ACCEPTED, updated_at=now, finished_at=None, message=None)
        ).rowcount
        if not restarted:
            return None
        n = conn.execute(
            update(tasks)
            .where(
                tasks.c.campaign_id == campaign_id,
                tasks.c.state.in_([TaskState.FAILED, TaskState.CANCELLED]),
            )
            .values(state=TaskState.PENDING, error=None, finished_at=None)
        ).rowcount
        conn.execute(update(controls).where(controls.c.campaign_id == campaign_id).values(active=0))
        message = f"restarted: {n} failed/cancelled task(s) back to pending"
        accepted = EventWrite(now, "campaign", state=CampaignState.ACCEPTED, message=message)
        append_events(conn, campaign_id, [accepted])
    return int(n)


def reopen(
    db: Database, campaign_id: str, rerun: Sequence[str], message: str, runner: str | None = None
) -> None:
    """Back to `accepted` with `rerun`'s tasks pending (points were added as it ended)."""
    now = time.time()
    with db.transaction() as conn:
        if runner is not None:
            fence(conn, campaign_id, runner, now)
        reopen_rows(conn, campaign_id, rerun, now)
        accepted = EventWrite(now, "campaign", state=CampaignState.ACCEPTED, message=message)
        append_events(conn, campaign_id, [accepted])


def reopen_rows(conn: Connection, campaign_id: str, rerun: Sequence[str], now: float) -> None:
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


def same_or_null(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """`column = value`, where a None value means NULL."""
    return column.is_(None) if value is None else column == value


def unchanged_since(seen: CampaignRecord, *columns: str) -> list[ColumnElement[bool]]:
    """Conditions true while these columns of the campaign's row hold what `seen` holds."""
    return [same_or_null(campaigns.c[column], getattr(seen, column)) for column in columns]


def _touch(conn: Connection, campaign_id: str, seen: CampaignRecord, *columns: str) -> bool:
    """Lock the campaign's row if its `columns` are as `seen`; False if they changed."""
    return bool(
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, *unchanged_since(seen, *columns))
            .values(updated_at=campaigns.c.updated_at)
        ).rowcount
    )


def campaign_record(row: Any) -> CampaignRecord:
    return CampaignRecord(**{k: row[k] for k in CampaignRecord.__dataclass_fields__})
