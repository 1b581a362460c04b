"""What the Campaigns page shows, read through the service: per campaign and step, task counts
by state, the latest failures and the throughput over the last minute.

Read-only and cheap: the counts are the status's grouped count, the rest two small queries per
campaign. `CampaignsFeed` shares one read per refresh interval among every open page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.service import Service
from orchestrator.states import CampaignState
from orchestrator.status import TASK_STATES

THROUGHPUT_WINDOW = 60.0  # seconds: "tasks finished per second over the last minute"
RECENT_FAILURES = 3  # failures shown per campaign, newest first
ERROR_LINES = 2  # the last lines of each failure's error (the exception, usually)


@dataclass(frozen=True)
class StepCounts:
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
class CampaignOverview:
    id: str
    name: str
    project: str
    state: str
    points: int
    message: str | None
    steps: list[StepCounts]
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
    campaigns: list[CampaignOverview] = field(default_factory=list)
    error: str | None = None  # the store could not be read


def campaigns_overview(
    service: Service,
    project: str | None = None,
    *,
    now: float | None = None,
    limit: int = 10,
    window: float = THROUGHPUT_WINDOW,
) -> list[CampaignOverview]:
    """The newest `limit` campaigns of `project` (every project when None), newest first."""
    now = time.time() if now is None else now
    return [
        campaign_overview(service, status, now=now, window=window)
        for status in service.list_campaigns(project=project, limit=limit)
    ]


def campaign_overview(
    service: Service, status: dict[str, Any], *, now: float, window: float = THROUGHPUT_WINDOW
) -> CampaignOverview:
    """One campaign, from its status (DESIGN.md's status object)."""
    steps = [
        StepCounts(name, s["total"], {state: s[state] for state in TASK_STATES})
        for name, s in status["steps"].items()
    ]
    finished, span = _finished_in_window(service, status, now, window)
    failed = status["counts"]["failed"]
    return CampaignOverview(
        id=status["id"],
        name=status["name"],
        project=status["project"],
        state=status["state"],
        points=status["points"],
        message=status["message"],
        steps=steps,
        counts=dict(status["counts"]),
        total=sum(s.total for s in steps),
        failures=recent_failures(service, status["id"]) if failed else [],
        finished_in_window=finished,
        throughput=finished / span if span > 0 else 0.0,
        created_at=status["created_at"],
        started_at=status["started_at"],
        finished_at=status["finished_at"],
    )


def recent_failures(service: Service, campaign_id: str, n: int = RECENT_FAILURES) -> list[Failure]:
    return [
        Failure(
            task=row.step if row.point is None else f"{row.step}/{row.point}",
            attempt=int(row.attempt or 0),
            finished_at=row.finished_at,
            error=error_tail(row.error),
        )
        for row in service.recent_failures(campaign_id, n)
    ]


def error_tail(error: str | None, lines: int = ERROR_LINES) -> str:
    kept = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) if kept else "(no error message)"


def _finished_in_window(
    service: Service, status: dict[str, Any], now: float, window: float
) -> tuple[int, float]:
    """Tasks that succeeded or failed in the last `window` seconds, and the seconds that
    window really spans (shorter for a campaign that started less than `window` ago)."""
    since = now - window
    if status["state"] not in (CampaignState.RUNNING, CampaignState.ACCEPTED) and (
        status["finished_at"] is None or status["finished_at"] < since
    ):
        return 0, window  # ended before the window: no query
    finished = service.finished_since(status["id"], since)
    started = status["started_at"] if status["started_at"] is not None else since
    return finished, min(window, max(now - started, 1.0))


class SnapshotSource(Protocol):
    """What a Campaigns page reads: a feed of the store (`CampaignsFeed`, in the service) or
    the snapshots the service pushed (`orchestrator.dashboard.pushed`, in the scheduler)."""

    def snapshot(self, project: str | None = None) -> Snapshot: ...


class CampaignsFeed:
    """Snapshots of `campaigns_overview`, read at most once per `fresh` seconds per project
    whatever the number of open pages; opens its service on first use."""

    def __init__(
        self,
        service: Callable[[], Service],
        *,
        limit: int = 10,
        fresh: float = 1.0,
        window: float = THROUGHPUT_WINDOW,
        owns_service: bool = True,
    ):
        self._open = service
        self._service: Service | None = None
        self._owns_service = owns_service
        self.limit = limit
        self.fresh = fresh
        self.window = window
        self._lock = threading.Lock()
        self._cache: dict[str | None, Snapshot] = {}

    @property
    def service(self) -> Service:
        if self._service is None:
            self._service = self._open()
        return self._service

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
            found = campaigns_overview(
                self.service, project, now=now, limit=self.limit, window=self.window
            )
        except Exception as exc:  # the page says so and tries again on the next refresh
            return Snapshot(now, project, error=f"cannot read the state store: {exc}")
        return Snapshot(now, project, found)

    def close(self) -> None:
        with self._lock:
            if self._service is not None and self._owns_service:
                self._service.close()
            self._service = None
            self._cache.clear()


def as_service_factory(
    service: Service | str | Callable[[], Service],
) -> tuple[Callable[[], Service], bool]:
    """(a function that opens the service, whether the feed owns what it opens); a database
    URL opens a reader of that store (see `Service.reader`)."""
    if isinstance(service, Service):
        return (lambda: service), False
    if isinstance(service, str):
        url = service
        return (lambda: Service.reader(url)), True
    return service, True


def counts_text(counts: dict[str, Any], total: int) -> str:
    """`12/33 done (36%): 10 succeeded, 2 failed, 3 running, …` (states with tasks only)."""
    done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
    percent = 100.0 * done / total if total else 100.0
    parts = [f"{counts[s]} {s}" for s in TASK_STATES if counts.get(s)]
    return f"{done}/{total} done ({percent:.0f}%)" + (": " + ", ".join(parts) if parts else "")
