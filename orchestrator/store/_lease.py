"""The runner lease: which process runs a campaign, for how long; and the fence on its writes.

One live runner at a time: a runner takes a campaign (`claim`) only from nobody, from
itself, or from a runner that is no longer alive, with a compare-and-set on the holder and
its lease, so two runners racing for it cannot both win. It keeps the lease by `heartbeat`
and gives it back by `release`; both act only while it is still the holder.

Every write a runner makes for its campaign is fenced (`fence`): the transaction first
touches the campaign's row on `runner = me AND lease_until > now`, which locks the row
until the commit, and is refused (`LeaseLost`, nothing written) when the lease ran out or
another runner took it. So a runner that was paused, partitioned or slow past its lease
cannot land a late batch over the work of the runner that took over.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any

from sqlalchemy import ColumnElement, Connection, select, update

from orchestrator.errors import CampaignNotFound, LeaseLost
from orchestrator.store._database import Database
from orchestrator.store.tables import campaigns


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


def claim(db: Database, campaign_id: str, runner: str, lease_seconds: float) -> str | None:
    """Take the campaign for `runner` unless a live runner holds it; None on success,
    else the holder's identity."""
    now = time.time()
    with db.transaction() as conn:
        row = conn.execute(
            select(campaigns.c.runner, campaigns.c.lease_until, campaigns.c.state).where(
                campaigns.c.id == campaign_id
            )
        ).first()
        if row is None:
            raise CampaignNotFound(campaign_id)
        if row.runner != runner and runner_alive(row.runner, row.lease_until, now):
            return str(row.runner)
        # compare-and-set on the holder *and* its lease: a renewal in between wins
        taken = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .where(_same_or_null(campaigns.c.runner, row.runner))
            .where(_same_or_null(campaigns.c.lease_until, row.lease_until))
            .values(runner=runner, lease_until=now + lease_seconds, updated_at=now)
        ).rowcount
    return None if taken == 1 else "another runner"


def heartbeat(db: Database, campaign_id: str, runner: str, lease_seconds: float) -> bool:
    """Renew the lease; False when `runner` no longer holds a lease that has not run out."""
    now = time.time()
    with db.transaction() as conn:
        return bool(
            conn.execute(
                update(campaigns)
                .where(*_held_by(campaign_id, runner, now))
                .values(lease_until=now + lease_seconds)
            ).rowcount
        )


def release(db: Database, campaign_id: str, runner: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.runner == runner)
            .values(runner=None, lease_until=None)
        )


def fence(conn: Connection, campaign_id: str, runner: str, now: float) -> None:
    """First statement of a runner's write: lock the campaign's row while `runner` holds
    an unexpired lease on it, else raise `LeaseLost` (the caller's transaction rolls back)."""
    held = conn.execute(
        update(campaigns)
        .where(*_held_by(campaign_id, runner, now))
        .values(lease_until=campaigns.c.lease_until)
    ).rowcount
    if not held:
        raise LeaseLost(campaign_id, runner)


def _held_by(campaign_id: str, runner: str, now: float) -> list[ColumnElement[bool]]:
    return [
        campaigns.c.id == campaign_id,
        campaigns.c.runner == runner,
        campaigns.c.lease_until > now,
    ]


def _same_or_null(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
