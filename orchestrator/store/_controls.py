"""Control requests from other processes (CLI, API) to a campaign's runner: cancel, extend,
throttle.

A request is recorded with its event in one transaction; the runner reads the active
requests and acts on them. What a request does to a campaign nobody runs, or to a
finished one, is written in the same transaction, guarded by the campaign's row as the
caller saw it (see `_campaigns.unchanged_since`): if it changed meanwhile, that part is
not written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orchestrator.states import CAMPAIGN_TERMINAL, CampaignState, TaskState
from orchestrator.store._campaigns import _touch, reopen_rows, unchanged_since
from orchestrator.store._database import Database
from orchestrator.store._events import append_events
from orchestrator.store.records import CampaignRecord, Control, EventWrite
from orchestrator.store.tables import campaigns, controls, tasks

UNFINISHED_TASK = (TaskState.QUEUED, TaskState.RUNNING, TaskState.PENDING)


def request_cancel(
    db: Database,
    campaign_id: str,
    step: str | None,
    point: int | None,
    at_once: CampaignRecord | None,
) -> None:
    """Ask the runner to cancel the campaign, a step, or a task. With `at_once` (the
    campaign as the caller saw it, with nobody running it), the campaign and its unfinished
    tasks are cancelled now, unless a runner took it since (it then acts on the request)."""
    now = time.time()
    scope = "campaign" if step is None and point is None else "tasks"
    with db.transaction() as conn:
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
        message = f"cancel {scope} requested"
        requested = EventWrite(now, "cancel-requested", step=step, point=point, message=message)
        append_events(conn, campaign_id, [requested])
        if at_once is not None and _cancel_now(conn, campaign_id, at_once, now):
            cancelled = EventWrite(now, "campaign", state=CampaignState.CANCELLED)
            append_events(conn, campaign_id, [cancelled])


def _cancel_now(conn: Connection, campaign_id: str, seen: CampaignRecord, now: float) -> bool:
    changed = conn.execute(
        update(campaigns)
        .where(
            campaigns.c.id == campaign_id,
            *unchanged_since(seen, "state", "runner", "lease_until"),
        )
        .values(state=CampaignState.CANCELLED, updated_at=now, finished_at=now)
    ).rowcount
    if not changed:
        return False
    conn.execute(
        update(tasks)
        .where(tasks.c.campaign_id == campaign_id, tasks.c.state.in_(UNFINISHED_TASK))
        .values(state=TaskState.CANCELLED, finished_at=now)
    )
    return True


def active(db: Database, campaign_id: str, after: int) -> list[Control]:
    query = (
        select(controls)
        .where(controls.c.campaign_id == campaign_id, controls.c.active == 1, controls.c.id > after)
        .order_by(controls.c.id)
    )
    with db.connect() as conn:
        return [Control(r.id, r.action, r.step, r.point) for r in conn.execute(query)]


def extend(
    db: Database,
    campaign_id: str,
    seen: CampaignRecord,
    spec: dict[str, Any],
    points: int,
    rerun: Sequence[str],
) -> int | None:
    """Store the campaign's spec with more points and tell its runner, unless its state or
    points changed since `seen` (None). A campaign that had ended is reopened (`accepted`)
    with the tasks of `rerun` pending. Returns the number of points added."""
    now = time.time()
    with db.transaction() as conn:
        stored = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, *unchanged_since(seen, "state", "points"))
            .values(spec=spec, points=points, updated_at=now)
        ).rowcount
        if not stored:
            return None
        if seen.state in CAMPAIGN_TERMINAL:
            reopen_rows(conn, campaign_id, rerun, now)
        conn.execute(
            insert(controls).values(
                campaign_id=campaign_id, action="extend", created_at=now, active=1
            )
        )
        added = points - seen.points
        message = f"extended: {added} point(s) added, {points} in all"
        append_events(conn, campaign_id, [EventWrite(now, "extended", message=message)])
    return added


def throttle(
    db: Database, campaign_id: str, seen: CampaignRecord, limit: int, step: str | None
) -> dict[str, Any] | None:
    """Store the campaign's throttle with `limit` for the window (`step` None) or for a
    batch step, and tell its runner; None, nothing written, if its state changed since
    `seen`. Returns the campaign's whole throttle."""
    now = time.time()
    with db.transaction() as conn:
        # lock the row first: two throttles at once each keep the other's part
        if not _touch(conn, campaign_id, seen, "state"):
            return None
        current = conn.execute(
            select(campaigns.c.throttle).where(campaigns.c.id == campaign_id)
        ).scalar_one()
        merged: dict[str, Any] = {"window": None, "steps": {}, **(current or {})}
        if step is None:
            merged["window"] = limit
        else:
            merged["steps"] = {**merged["steps"], step: limit}
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(throttle=merged))
        conn.execute(
            insert(controls).values(
                campaign_id=campaign_id, action="throttle", step=step, created_at=now, active=1
            )
        )
        if step is None:
            message = f"at most {limit} point(s) in flight"
        else:
            message = f"step {step}: at most {limit} array task(s)"
        append_events(conn, campaign_id, [EventWrite(now, "throttled", step=step, message=message)])
    return merged
