"""Registers what the engine left in the store's outbox, until the knowledge graph has it.

The engine writes each registration in the same transaction as the state change it
describes, so nothing is lost when the knowledge graph is down; this registrar sends them
in order, marks them done, and retries failures with exponential backoff. Registrations are
idempotent (stable IRIs), so one sent twice after a crash is an update, not a copy.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import CampaignNotFound
from orchestrator.kg.base import KnowledgeGraph
from orchestrator.kg.errors import KnowledgeGraphRejected, KnowledgeGraphUnavailable
from orchestrator.kg.model import (
    CampaignProvenance,
    OutputEntity,
    Registrable,
    TaskActivity,
    TaskRef,
    step_outputs_iri,
)
from orchestrator.store import OutboxItem, Store

logger = logging.getLogger(__name__)

BACKOFF = 1.0
BACKOFF_MAX = 300.0
SHARE_REST = 4.0  # busy at most a fifth of the time while campaigns run
BATCH = 1000


class Registrar:
    def __init__(
        self,
        store: Store,
        graph: KnowledgeGraph | Callable[[], KnowledgeGraph],
        *,
        interval: float = 1.0,
        backoff: float = BACKOFF,
    ):
        self.store = store
        self._graph = graph
        self._opened: KnowledgeGraph | None = None
        self.campaigns = Campaigns(store)
        self.interval = interval
        self.backoff = backoff
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_batch = 0  # items the last `run_once` took (BATCH: more may be waiting)

    def start(self) -> Registrar:
        self._thread = threading.Thread(target=self._loop, name="kg-registrar", daemon=True)
        self._thread.start()
        return self

    def graph(self) -> KnowledgeGraph:
        if self._opened is None:
            self._opened = self._graph() if callable(self._graph) else self._graph
        return self._opened

    def wake(self) -> None:
        self._wake.set()

    def close(self, drain: float = 0.0) -> None:
        """Stop; first keep sending for up to `drain` seconds while there is work. What is
        left stays in the outbox for the next registrar (a backlog of a million registrations
        never holds the campaign's end: each batch reads only `BATCH` rows, none counts all)."""
        deadline = time.monotonic() + drain
        while drain and time.monotonic() < deadline:
            if not self.run_once():
                break
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._opened is not None:
            self._opened.close()

    def run_once(self, now: float | None = None) -> bool:
        """Send what is due; False when a failure means waiting (or nothing was due)."""
        now = time.time() if now is None else now
        items = self.store.due_registrations(now, limit=BATCH)
        self.last_batch = len(items)
        if not items:
            return False
        try:
            self.graph().register(
                [thing for item in items for thing in to_registrables(item, self.campaigns)]
            )
        except KnowledgeGraphUnavailable as exc:
            attempts = min(i.attempts for i in items) + 1
            delay = min(self.backoff * 2 ** (attempts - 1), BACKOFF_MAX) * random.uniform(0.8, 1.2)
            logger.warning("knowledge graph unavailable (%s); retry in %.1fs", exc, delay)
            self.store.registration_failed([i.id for i in items], str(exc), now + delay, now)
            return False
        except (KnowledgeGraphRejected, ValueError) as exc:
            if len(items) > 1:  # find the one that is refused; register the others
                return any([self._one(item, now) for item in items])
            logger.error("registration %s refused for good: %s", items[0].id, exc)
            self.store.registration_failed([items[0].id], str(exc), None, now)
            return True
        self.store.registered([i.id for i in items], now)
        return True

    def _one(self, item: OutboxItem, now: float) -> bool:
        try:
            self.graph().register(to_registrables(item, self.campaigns))
        except KnowledgeGraphUnavailable as exc:
            delay = min(self.backoff * 2**item.attempts, BACKOFF_MAX)
            self.store.registration_failed([item.id], str(exc), now + delay, now)
            return False
        except (KnowledgeGraphRejected, ValueError) as exc:
            logger.error("registration %s refused for good: %s", item.id, exc)
            self.store.registration_failed([item.id], str(exc), None, now)
            return True
        self.store.registered([item.id], now)
        return True

    def _loop(self) -> None:
        """Sends in the background without taking the CPU from running campaigns: after a
        batch that took t seconds it rests SHARE_REST × t (it shares the service's process
        and cores with the engine and the Dask scheduler); `close(drain=…)` sends the rest."""
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                busy = self.run_once()
            except Exception:  # the store briefly unavailable: keep going
                logger.exception("registrar: sending registrations failed")
                busy = False
            rest = self.interval if not busy else SHARE_REST * (time.monotonic() - started)
            self._wake.wait(rest)
            self._wake.clear()


def to_registrables(item: OutboxItem, campaigns: Campaigns | None = None) -> list[Registrable]:
    """What an outbox row registers. A task row names only its step and point: `campaigns`
    (the store) gives the project and the point's parameters; the upstream attempts it was
    given (`used`, if any) become the IRIs of their outputs collections (`used_iris`)."""
    p = item.payload
    if item.kind == "campaign":
        return [
            CampaignProvenance(
                project=p["project"],
                campaign_id=item.campaign_id,
                name=p["name"],
                spec=p["spec"],
                submitted_by=p.get("submitted_by") or "anonymous",
                submitted_at=_time(p["submitted_at"]),
                state=p.get("state"),
                ended_at=_time(p.get("ended_at")),
            )
        ]
    project, parameters = p.get("project"), p.get("parameters")
    if (project is None or parameters is None) and campaigns is not None:
        project, parameters = campaigns.describe(item.campaign_id, p.get("point"))
    ref = TaskRef(str(project), item.campaign_id, p["step"], p.get("point"), p["attempt"])
    outputs = p.get("outputs") or []
    found: list[Registrable] = [
        TaskActivity(
            ref=ref,
            parameters=parameters or {},
            state=p["state"],
            started_at=_time(p.get("started_at") or p.get("ended_at")),
            ended_at=_time(p.get("ended_at")),
            slurm_job_id=p.get("slurm_job_id"),
            used=used_iris(ref, p.get("used") or []),
            outputs=tuple(_relpath(out) for out in outputs),
        )
    ]
    for out in outputs:
        found.append(
            OutputEntity(
                generated_by=ref,
                relpath=_relpath(out),
                # on Lustre: the S3 copy the export makes, which outlives the cluster
                location=_uri(out.get("exported_url") or out["url"]),
                size=int(out["size"]),
                digest=out["digest"],
                media_type=out.get("media_type") or "application/octet-stream",
                generated_at=_time(p.get("ended_at")),
            )
        )
    return found


class Campaigns:
    """Each campaign's project and sweep, read once from the store (again when it grew)."""

    def __init__(self, store: Store):
        self.store = store
        self._known: dict[str, tuple[str, int, Any]] = {}

    def describe(self, campaign_id: str, point: int | None) -> tuple[str, dict[str, Any]]:
        known = self._known.get(campaign_id)
        if known is None or (point is not None and point >= known[1]):
            from orchestrator.spec import CampaignSpec

            try:
                record = self.store.get_campaign(campaign_id)
            except CampaignNotFound as exc:  # deleted since: nothing left to describe
                raise ValueError(str(exc)) from exc
            sweep = CampaignSpec.model_validate(record.spec).make_sweep()
            known = self._known[campaign_id] = (record.project, len(sweep), sweep)
        project, size, sweep = known
        parameters = sweep.point(point) if point is not None and 0 <= point < size else {}
        return project, parameters


def used_iris(task: TaskRef, used: Sequence[Sequence[Any]]) -> tuple[str, ...]:
    """A task payload's `used` as IRIs, once each: `[step, point, attempt]` is that upstream
    attempt's outputs collection (point None: a single step's), `[step]` the collection of a
    `foreach` step gathered whole."""
    iris: dict[str, None] = {}
    for entry in used:
        if not isinstance(entry, list | tuple) or len(entry) not in (1, 3):
            raise ValueError(f"used: {entry!r} is neither [step, point, attempt] nor [step]")
        if len(entry) == 1:
            iris[step_outputs_iri(task.project, task.campaign_id, str(entry[0]))] = None
        else:
            step, point, attempt = entry
            if not isinstance(point, int | None) or not isinstance(attempt, int):
                raise ValueError(f"used: {entry!r} is not [step, point, attempt]")
            upstream = TaskRef(task.project, task.campaign_id, str(step), point, attempt)
            iris[upstream.outputs_iri] = None
    return tuple(iris)


def _relpath(output: Mapping[str, Any]) -> str:
    return str(output.get("relpath") or output["path"])


def _uri(location: str) -> str:
    """A local path as a file: URI (the graph needs absolute IRIs); URLs as they are."""
    return Path(location).as_uri() if location.startswith("/") else location


def _time(value: Any) -> Any:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)
