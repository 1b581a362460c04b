"""A campaign's append-only history.

Events are numbered per campaign without gaps: numbers are allocated from
`campaigns.last_event_seq` in the transaction that writes them, so they commit (or not)
together with the state change they describe.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select, update

from orchestrator.store._database import Database
from orchestrator.store.records import EventRecord, EventWrite
from orchestrator.store.tables import campaigns, events


def append_events(conn: Connection, campaign_id: str, new: Sequence[EventWrite]) -> None:
    """Number and insert `new`, in the caller's transaction."""
    last = conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(last_event_seq=campaigns.c.last_event_seq + len(new))
        .returning(campaigns.c.last_event_seq)
    ).scalar_one()
    first = last - len(new) + 1
    conn.execute(
        insert(events),
        [{"campaign_id": campaign_id, "seq": first + i, **e.__dict__} for i, e in enumerate(new)],
    )


def read_events(
    db: Database, campaign_id: str, *, after: int, limit: int, kind: str | None
) -> list[EventRecord]:
    query = (
        select(events)
        .where(events.c.campaign_id == campaign_id, events.c.seq > after)
        .order_by(events.c.seq)
        .limit(limit)
    )
    if kind is not None:
        query = query.where(events.c.kind == kind)
    with db.connect() as conn:
        return [
            EventRecord(**{k: v for k, v in row.items() if k != "campaign_id"})
            for row in conn.execute(query).mappings()
        ]
