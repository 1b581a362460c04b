"""The knowledge-graph outbox: registrations waiting to be sent.

A registration is written in the same transaction as the state change it describes (a
transactional outbox), so the knowledge graph hears of everything that committed and of
nothing that did not; `done_at` is set once it is registered, or rejected for good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select, update

from orchestrator.store._database import Database
from orchestrator.store.records import OutboxItem
from orchestrator.store.tables import outbox


def add_registrations(
    conn: Connection, campaign_id: str, items: Sequence[tuple[str, dict[str, Any]]], now: float
) -> None:
    """Queue (kind, payload) registrations, in the caller's transaction."""
    conn.execute(
        insert(outbox),
        [
            {
                "campaign_id": campaign_id,
                "kind": kind,
                "payload": payload,
                "created_at": now,
                "attempts": 0,
                "next_at": now,
            }
            for kind, payload in items
        ],
    )


def due_query(now: float, limit: int) -> Select[Any]:
    """Due first, then in the order written: a range of the partial index of what is still to
    send (`ix_outbox_pending`), read `limit` rows at a time, however long the backlog."""
    return (
        select(outbox)
        .where(outbox.c.done_at.is_(None), outbox.c.next_at <= now)
        .order_by(outbox.c.next_at, outbox.c.id)
        .limit(limit)
    )


def due(db: Database, now: float, limit: int) -> list[OutboxItem]:
    query = due_query(now, limit)
    with db.connect() as conn:
        return [
            OutboxItem(r.id, r.campaign_id, r.kind, r.payload, r.attempts)
            for r in conn.execute(query)
        ]


def registered(db: Database, ids: Sequence[int], now: float) -> None:
    if ids:
        with db.transaction() as conn:
            conn.execute(
                update(outbox).where(outbox.c.id.in_(list(ids))).values(done_at=now, error=None)
            )


def failed(db: Database, ids: Sequence[int], error: str, next_at: float | None, now: float) -> None:
    """A failed attempt: try again at `next_at`, or never (None: rejected for good)."""
    if not ids:
        return
    values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "error": error[:2000]}
    if next_at is None:
        values["done_at"] = now
    else:
        values["next_at"] = next_at
    with db.transaction() as conn:
        conn.execute(update(outbox).where(outbox.c.id.in_(list(ids))).values(**values))


def backlog(db: Database, campaign_id: str | None) -> int:
    query = select(func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
    if campaign_id is not None:
        query = query.where(outbox.c.campaign_id == campaign_id)
    with db.connect() as conn:
        return int(conn.execute(query).scalar_one())


OutputKey = tuple[str, int | None, int]


def task_outputs(
    db: Database, campaign_id: str, wanted: Callable[[OutputKey, str], bool] | None = None
) -> dict[OutputKey, Any]:
    """The `outputs` registered with each finished task attempt of the campaign, by
    (step, point, attempt): what its manifest line lists (read when the manifest is rebuilt).
    Read as a stream; with `wanted(key, state)`, only those kept (memory bounded by them)."""
    query = (
        select(outbox.c.payload)
        .where(outbox.c.campaign_id == campaign_id, outbox.c.kind == "task")
        .order_by(outbox.c.id)
    )
    found: dict[OutputKey, Any] = {}
    with db.connect() as conn:
        for (payload,) in conn.execution_options(yield_per=2000).execute(query):
            if payload.get("outputs"):
                key = (payload["step"], payload.get("point"), int(payload["attempt"]))
                if wanted is None or wanted(key, str(payload.get("state"))):
                    found[key] = payload["outputs"]
    return found
