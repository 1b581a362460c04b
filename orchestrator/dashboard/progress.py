"""What the Campaigns page shows, read from the state store: per campaign and step, task counts
by state, the latest failures and the throughput over the last minute.

Read-only and cheap: the counts are the status's grouped count, the rest two small queries per
campaign. `CampaignsFeed` shares one read per refresh interval among every open page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from orchestrator.states import CampaignState, TaskState
from orchestrator.status import TASK_STATES, build_status
from orchestrator.store import SINGLE, CampaignRecord, Store
from orchestrator.store.tables import tasks

THROUGHPUT_WINDOW = 60.0  # seconds: "tasks finished per second over the last minute"
RECENT_FAILURES = 3  # failures shown per campaign, newest first
ERROR_LINES = 2  # the last lines of each failure's error (the exception, usually)

_FINISHED = (TaskState.SUCCEEDED, TaskState.FAILED)


@dataclass(frozen=True)
class StepProgress:
    step: str
    total: int
    counts: dict[str, int]  # every task state, pending included

    @property
    def done(self) -> int:
        return self.counts["succeeded"] + self.counts["failed"] + self.counts["cancelled"]


@dataclass(frozen=True)
class Failure:
    task: str  # `step` or `step/point`, as `orchestrator logs` takes it
    attempt: int
    finished_at: float | None
    error: str  # the last lines of the error


@dataclass(frozen=True)
class CampaignProgress:
    id: str
    name: str
    project: str
    state: str
    points: int
    message: str | None
    steps: list[StepProgress]
    counts: dict[str, int]  # over all steps
    total: int
    failures: list[Failure]
    finished_in_window: int  # tasks that succeeded or failed in the window
    throughput: float  # tasks finished per second over the window
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def done(self) -> int:
        return self.counts["succeeded"] + self.counts["failed"] + self.counts["cancelled"]


@dataclass(frozen=True)
class Snapshot:
    time: float
    project: str | None
    campaigns: list[CampaignProgress] = field(default_factory=list)
    error: str | None = None  # the store could not be read


def campaigns_progress(
    store: Store,
    project: str | None = None,
    *,
    now: float | None = None,
    limit: int = 10,
    window: float = THROUGHPUT_WINDOW,
) -> list[CampaignProgress]:
    """The newest `limit` campaigns of `project` (every project when None), newest first."""
    now = time.time() if now is None else now
    return [
        campaign_progress(store, record, now=now, window=window)
        for record in store.list_campaigns(project=project, limit=limit)
    ]


def campaign_progress(
    store: Store, record: CampaignRecord, *, now: float, window: float = THROUGHPUT_WINDOW
) -> CampaignProgress:
    status = build_status(record, store.task_counts(record.id))
    steps = [
        StepProgress(name, s["total"], {state: s[state] for state in TASK_STATES})
        for name, s in status["steps"].items()
    ]
    finished, span = _finished_in_window(store, record, now, window)
    failed = status["counts"]["failed"]
    return CampaignProgress(
        id=record.id,
        name=record.name,
        project=record.project,
        state=record.state,
        points=record.points,
        message=record.message,
        steps=steps,
        counts=dict(status["counts"]),
        total=sum(s.total for s in steps),
        failures=recent_failures(store, record.id) if failed else [],
        finished_in_window=finished,
        throughput=finished / span if span > 0 else 0.0,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


def recent_failures(store: Store, campaign_id: str, n: int = RECENT_FAILURES) -> list[Failure]:
    query = (
        select(tasks.c.step, tasks.c.point, tasks.c.attempt, tasks.c.finished_at, tasks.c.error)
        .where(tasks.c.campaign_id == campaign_id, tasks.c.state == TaskState.FAILED)
        .order_by(tasks.c.finished_at.desc(), tasks.c.step, tasks.c.point)
        .limit(n)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Failure(
            task=step if point == SINGLE else f"{step}/{point}",
            attempt=int(attempt or 0),
            finished_at=finished_at,
            error=error_tail(error),
        )
        for step, point, attempt, finished_at, error in rows
    ]


def error_tail(error: str | None, lines: int = ERROR_LINES) -> str:
    kept = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) if kept else "(no error message)"


def _finished_in_window(
    store: Store, record: CampaignRecord, now: float, window: float
) -> tuple[int, float]:
    """Tasks that succeeded or failed in the last `window` seconds, and the seconds that
    window really spans (shorter for a campaign that started less than `window` ago)."""
    since = now - window
    if record.state not in (CampaignState.RUNNING, CampaignState.ACCEPTED) and (
        record.finished_at is None or record.finished_at < since
    ):
        return 0, window  # ended before the window: no query
    query = select(func.count()).where(
        tasks.c.campaign_id == record.id,
        tasks.c.state.in_(_FINISHED),
        tasks.c.finished_at >= since,
    )
    with store.engine.connect() as conn:
        finished = int(conn.execute(query).scalar_one())
    started = record.started_at if record.started_at is not None else since
    return finished, min(window, max(now - started, 1.0))


class CampaignsFeed:
    """Snapshots of `campaigns_progress`, read at most once per `fresh` seconds per project
    whatever the number of open pages; opens its store on first use."""

    def __init__(
        self,
        store: Callable[[], Store],
        *,
        limit: int = 10,
        fresh: float = 1.0,
        window: float = THROUGHPUT_WINDOW,
        owns_store: bool = True,
    ):
        self._open = store
        self._store: Store | None = None
        self._owns_store = owns_store
        self.limit = limit
        self.fresh = fresh
        self.window = window
        self._lock = threading.Lock()
        self._cache: dict[str | None, Snapshot] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self._open()
        return self._store

    def snapshot(self, project: str | None = None) -> Snapshot:
        with self._lock:  # concurrent pages wait for one read instead of each doing theirs
            cached = self._cache.get(project)
            now = time.time()
            if cached is not None and now - cached.time < self.fresh:
                return cached
            snap = self._read(project, now)
            self._cache[project] = snap
            return snap

    def _read(self, project: str | None, now: float) -> Snapshot:
        try:
            found = campaigns_progress(
                self.store, project, now=now, limit=self.limit, window=self.window
            )
        except Exception as exc:  # the page says so and tries again on the next refresh
            return Snapshot(now, project, error=f"cannot read the state store: {exc}")
        return Snapshot(now, project, found)

    def close(self) -> None:
        with self._lock:
            if self._store is not None and self._owns_store:
                self._store.close()
            self._store = None
            self._cache.clear()


def as_store_factory(store: Store | str | Callable[[], Store]) -> tuple[Callable[[], Store], bool]:
    """(a function that opens the store, whether the feed owns what it opens)."""
    if isinstance(store, Store):
        return (lambda: store), False
    if isinstance(store, str):
        url = store
        return (lambda: Store(url)), True
    return store, True


def counts_text(counts: dict[str, Any], total: int) -> str:
    """`12/33 done (36%): 10 succeeded, 2 failed, 3 running, …` (states with tasks only)."""
    done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
    percent = 100.0 * done / total if total else 100.0
    parts = [f"{counts[s]} {s}" for s in TASK_STATES if counts.get(s)]
    return f"{done}/{total} done ({percent:.0f}%)" + (": " + ", ".join(parts) if parts else "")
