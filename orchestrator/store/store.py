"""The durable state store: campaigns, tasks, append-only events, control requests.

SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL. Every write that reports a
finished task commits before the caller is told, so nothing reported is ever lost.

`Store` is the one object callers hold; each method is a single read or a single
transaction of the module of its table group (`_campaigns`, `_tasks`, `_events`,
`_controls`, `_lease`, `_outbox`; the connection in `_database`). The store does what it
is asked, atomically; whether a request is allowed is the service's to decide. Writes
decided on a row read earlier take that row (`seen`) and report, by returning None or
False, that it changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine

from orchestrator.store import _campaigns, _controls, _events, _lease, _outbox, _tasks
from orchestrator.store._campaigns import new_campaign_id
from orchestrator.store._database import Database
from orchestrator.store._lease import runner_alive, runner_identity
from orchestrator.store._tasks import SINGLE
from orchestrator.store.records import (
    CampaignRecord,
    Control,
    EventRecord,
    OutboxItem,
    TaskRecord,
    WriteBatch,
)

__all__ = ["SINGLE", "Store", "new_campaign_id", "runner_alive", "runner_identity"]


class Store:
    def __init__(self, url: str, *, echo: bool = False):
        self.db = Database(url, echo=echo)
        self.url = url
        self.engine: Engine = self.db.engine
        self.dialect = self.db.dialect

    # ----------------------------------------------------------------- schema
    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already)."""
        self.db.migrate()

    def close(self) -> None:
        self.db.close()

    def try_lock(self, name: str) -> AbstractContextManager[bool]:
        """Hold the store-wide lock `name` if no other process holds it (yields whether it
        is held): e.g. one front door at a time brings a project up."""
        return self.db.try_lock(name)

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        self.db.ping()

    def _tx(self) -> AbstractContextManager[Connection]:
        return self.db.transaction()

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
        return _campaigns.create(
            self.db,
            campaign_id,
            project,
            owner,
            idempotency_key,
            spec=spec,
            name=name,
            points=points,
            results_url=results_url,
            import_paths=import_paths,
        )

    def find_by_idempotency_key(self, project: str, key: str) -> str | None:
        return _campaigns.find_by_idempotency_key(self.db, project, key)

    def get_campaign(self, campaign_id: str) -> CampaignRecord:
        return _campaigns.get(self.db, campaign_id)

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
        return _campaigns.listed(
            self.db, project=project, state=state, name=name, limit=limit, before=before
        )

    def set_campaign_state(
        self,
        campaign_id: str,
        state: str,
        message: str | None = None,
        *,
        runner: str | None = None,
    ) -> None:
        """With `runner`: fenced on its lease (`LeaseLost`, nothing written, if lost)."""
        _campaigns.set_state(self.db, campaign_id, state, message, runner)

    def delete_campaign(self, campaign_id: str, *, seen: CampaignRecord) -> bool:
        """Delete the campaign and its rows; False (nothing deleted) if its state is no
        longer `seen`'s."""
        return _campaigns.delete(self.db, campaign_id, seen)

    def restart(self, campaign_id: str, *, seen: CampaignRecord) -> int | None:
        """Put failed and cancelled tasks back to pending; returns how many (None, nothing
        written, if the campaign's lease is no longer `seen`'s: a runner took it)."""
        return _campaigns.restart(self.db, campaign_id, seen)

    def reopen(
        self, campaign_id: str, rerun: Sequence[str], message: str, *, runner: str | None = None
    ) -> None:
        """Back to `accepted` with `rerun`'s tasks pending (points were added as it ended);
        with `runner`, fenced on its lease."""
        _campaigns.reopen(self.db, campaign_id, rerun, message, runner)

    def unfinished_campaigns(self, project: str | None = None) -> list[CampaignRecord]:
        return _campaigns.unfinished(self.db, project)

    def last_activity(self, now: float) -> dict[str, float]:
        """Per project, when a campaign last ran: `now` while one is accepted or running,
        else the latest finish (idle clusters are torn down from this)."""
        return _campaigns.last_activity(self.db, now)

    # ----------------------------------------------------------- runner lease
    def claim(self, campaign_id: str, runner: str, lease_seconds: float) -> str | None:
        """Take the campaign for `runner` unless a live runner holds it; None on success,
        else the holder's identity."""
        return _lease.claim(self.db, campaign_id, runner, lease_seconds)

    def heartbeat(self, campaign_id: str, runner: str, lease_seconds: float) -> bool:
        """Renew the lease; False when `runner` no longer holds an unexpired lease."""
        return _lease.heartbeat(self.db, campaign_id, runner, lease_seconds)

    def release(self, campaign_id: str, runner: str) -> None:
        _lease.release(self.db, campaign_id, runner)

    # ------------------------------------------------------------------ tasks
    def task_counts(self, campaign_id: str) -> dict[str, dict[str, int]]:
        """{step: {state: count}} over the task rows (pending tasks have no row yet)."""
        return _tasks.counts(self.db, campaign_id)

    def tasks_in_range(self, campaign_id: str, start: int, stop: int) -> list[TaskRecord]:
        """Task rows of points start..stop-1 (foreach steps only)."""
        return _tasks.in_range(self.db, campaign_id, start, stop)

    def single_tasks(self, campaign_id: str) -> list[TaskRecord]:
        return _tasks.singles(self.db, campaign_id)

    def max_point(self, campaign_id: str) -> int:
        """The highest point with a task row (-1 if none)."""
        return _tasks.max_point(self.db, campaign_id)

    def get_task(self, campaign_id: str, step: str, point: int | None) -> TaskRecord | None:
        return _tasks.get(self.db, campaign_id, step, point)

    def list_tasks(
        self,
        campaign_id: str,
        *,
        step: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        after: tuple[str, int] | None = None,
    ) -> list[TaskRecord]:
        return _tasks.listed(self.db, campaign_id, step=step, state=state, limit=limit, after=after)

    def task_keys(
        self,
        campaign_id: str,
        *,
        state: str,
        limit: int = 1000,
        after: tuple[str, int] | None = None,
    ) -> list[tuple[str, int, int, str]]:
        """(step, point, attempt, state) of the page `list_tasks` would return for `state`
        (point `SINGLE` for a single step's task)."""
        return _tasks.keys(self.db, campaign_id, state=state, limit=limit, after=after)

    def succeeded_results(
        self, campaign_id: str, step: str, points: Sequence[int]
    ) -> dict[int, tuple[Any, str | None]]:
        return _tasks.succeeded_results(self.db, campaign_id, step, points)

    def apply(self, batch: WriteBatch) -> None:
        """Write a runner's batch of task changes and events in one transaction; a batch
        naming its runner is fenced on that runner's lease (`LeaseLost`, nothing written)."""
        _tasks.apply(self.db, batch)

    def finished_since(self, campaign_id: str, since: float) -> int:
        return _tasks.finished_since(self.db, campaign_id, since)

    def recent_failures(self, campaign_id: str, n: int) -> list[TaskRecord]:
        return _tasks.recent_failures(self.db, campaign_id, n)

    # ----------------------------------------------------------------- events
    def events(
        self, campaign_id: str, *, after: int = 0, limit: int = 1000, kind: str | None = None
    ) -> list[EventRecord]:
        return _events.read_events(self.db, campaign_id, after=after, limit=limit, kind=kind)

    # --------------------------------------------------------------- controls
    def request_cancel(
        self,
        campaign_id: str,
        *,
        step: str | None = None,
        point: int | None = None,
        at_once: CampaignRecord | None = None,
    ) -> None:
        """Ask the campaign's runner to cancel it, a step, or a task. With `at_once` (the
        campaign as seen with nobody running it) the campaign and its unfinished tasks are
        cancelled in the same transaction, unless a runner took it since."""
        _controls.request_cancel(self.db, campaign_id, step, point, at_once)

    def active_controls(self, campaign_id: str, after: int = 0) -> list[Control]:
        return _controls.active(self.db, campaign_id, after)

    def extend(
        self,
        campaign_id: str,
        spec: dict[str, Any],
        points: int,
        rerun: Sequence[str],
        *,
        seen: CampaignRecord,
    ) -> int | None:
        """Store a campaign's spec with more points (in one transaction) and tell its runner.

        A finished campaign is reopened (`accepted`) and the tasks of `rerun` (fan-in steps,
        which must see the new points) go back to pending; nothing else that finished runs
        again. Returns the number of points added; None, nothing written, if the campaign's
        state or points are no longer `seen`'s.
        """
        return _controls.extend(self.db, campaign_id, seen, spec, points, rerun)

    def throttle(
        self, campaign_id: str, limit: int, step: str | None = None, *, seen: CampaignRecord
    ) -> dict[str, Any] | None:
        """Keep `limit` as the campaign's window (`step` None) or a batch step's array
        parallelism, with an event, and tell its runner; returns the whole throttle (None,
        nothing written, if the campaign's state is no longer `seen`'s)."""
        return _controls.throttle(self.db, campaign_id, seen, limit, step)

    # ---------------------------------------------------------------- outbox
    def due_registrations(self, now: float, limit: int = 200) -> list[OutboxItem]:
        return _outbox.due(self.db, now, limit)

    def registered(self, ids: Sequence[int], now: float) -> None:
        _outbox.registered(self.db, ids, now)

    def registration_failed(
        self, ids: Sequence[int], error: str, next_at: float | None, now: float
    ) -> None:
        """A failed attempt: try again at `next_at`, or never (None: rejected for good)."""
        _outbox.failed(self.db, ids, error, next_at, now)

    def task_outputs(
        self,
        campaign_id: str,
        wanted: Callable[[tuple[str, int | None, int], str], bool] | None = None,
    ) -> dict[tuple[str, int | None, int], Any]:
        """The output files registered with each finished task attempt, by (step, point,
        attempt), from the outbox (the manifest is rebuilt from them); with `wanted(key,
        state)`, only those it accepts (the outbox is read as a stream)."""
        return _outbox.task_outputs(self.db, campaign_id, wanted)

    def outbox_backlog(self, campaign_id: str | None = None) -> int:
        return _outbox.backlog(self.db, campaign_id)
