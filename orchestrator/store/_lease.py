"""The runner lease: which process runs a campaign, for how long.

One live runner at a time: a runner takes a campaign (`claim`) only from nobody, from
itself, or from a runner that is no longer alive, with a compare-and-set on the holder,
so two runners racing for it cannot both win. It keeps the lease by `heartbeat` and gives
it back by `release`; both act only while it is still the holder.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

from sqlalchemy import select, update

from orchestrator.errors import CampaignNotFound
from orchestrator.store._campaigns import same_or_null
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
        taken = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .where(same_or_null(campaigns.c.runner, row.runner))
            .values(runner=runner, lease_until=now + lease_seconds, updated_at=now)
        ).rowcount
    return None if taken == 1 else "another runner"


def heartbeat(db: Database, campaign_id: str, runner: str, lease_seconds: float) -> bool:
    with db.transaction() as conn:
        return bool(
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.runner == runner)
                .values(lease_until=time.time() + lease_seconds)
            ).rowcount
        )


def release(db: Database, campaign_id: str, runner: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.runner == runner)
            .values(runner=None, lease_until=None)
        )
