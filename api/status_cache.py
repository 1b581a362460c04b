"""A short-lived cache of campaign statuses, serialized, for the pollers of GET …/{id}.

The status of a campaign is read from the store (the record, then task counts grouped by
step and state: ~1 ms of CPU for a 5000-task campaign) and serialized at most once per
`FRESH_SECONDS` per campaign, however many clients poll it; every other request in that
window gets the same bytes (and ETag). Concurrent misses of one campaign share one store
read (single flight), so 50 pollers whose entry expires at once cost one read, not 50.

Freshness: a write made through this process (submit, cancel, restart, delete) invalidates
the campaign's entry at once, so its author reads its own write. Anything else that changes
a campaign (the runner's engine advancing its tasks, another process sharing the store) shows
up within `FRESH_SECONDS`.

Refresh ahead (the service's cache): a request for an entry older than `REFRESH_AHEAD` but
still fresh gets it at once and starts the next read in the background, so a campaign that is
polled steadily is read again before its entry runs out, and no poller waits for the store
(without it, every half second all 50 pollers of a campaign waited on one read: the slowest
of their requests).

Isolation is not the cache's business: an entry remembers the campaign's project, and the
route answers 404 unless it is the caller's project, exactly as for a record read from the
store.

All of it runs on the event loop thread (no locks); only the store read goes to a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.concurrency import run_in_threadpool

FRESH_SECONDS: Final = 0.5  # an entry serves this long after its store read began
REFRESH_AHEAD: Final = 0.25  # a request for an entry this old starts the next read
MAX_ENTRIES: Final = 10_000  # a bound on memory: past it, the cache starts over


@dataclass(frozen=True)
class CachedStatus:
    project: str
    body: bytes  # the status as JSON, as JSONResponse would render it
    etag: str  # a strong validator of `body`
    read_at: float  # time.monotonic() when the store read began


def render(status: dict[str, Any]) -> bytes:
    return json.dumps(
        status, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


def matches_etag(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*`, or one of the listed tags by weak comparison."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class StatusCache:
    """campaign id -> its serialized status; `read` builds a status dict from the store (in a
    worker thread) or raises (e.g. CampaignNotFound, which is not cached)."""

    def __init__(
        self,
        read: Callable[[str], dict[str, Any]],
        *,
        fresh_seconds: float = FRESH_SECONDS,
        refresh_ahead: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._read = read
        self._fresh = fresh_seconds
        self._ahead = refresh_ahead
        self._clock = clock
        self._entries: dict[str, CachedStatus] = {}
        # campaign id -> (a token of the read under way, its future); invalidate drops it
        self._pending: dict[str, tuple[object, asyncio.Future[CachedStatus]]] = {}

    def fresh(self, campaign_id: str) -> CachedStatus | None:
        """The entry if it is still within its window (no await: the hot path); with
        `refresh_ahead`, an entry that old also starts the next read, in the background."""
        entry = self._entries.get(campaign_id)
        if entry is None:
            return None
        age = self._clock() - entry.read_at
        if age >= self._fresh:
            return None
        if self._ahead is not None and age >= self._ahead and campaign_id not in self._pending:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # not on the event loop: nothing to start the read on
                return entry
            self._start(campaign_id)
        return entry

    async def get(self, campaign_id: str) -> CachedStatus:
        """The fresh entry, or a new one read from the store (one read for concurrent
        callers). Errors of the read propagate to every caller and are not cached."""
        entry = self.fresh(campaign_id)
        if entry is not None:
            return entry
        under_way = self._pending.get(campaign_id) or self._start(campaign_id)
        # shield: one caller going away (a client disconnecting) must not cancel the read the
        # others wait for
        return await asyncio.shield(under_way[1])

    def _start(self, campaign_id: str) -> tuple[object, asyncio.Future[CachedStatus]]:
        """Start a store read of the campaign (the one under way for it)."""
        token = object()
        future = asyncio.ensure_future(self._refresh(campaign_id, token))
        under_way = self._pending[campaign_id] = (token, future)
        future.add_done_callback(lambda done: self._forget(campaign_id, token, done))
        return under_way

    def invalidate(self, campaign_id: str) -> None:
        """Forget the campaign's entry, and make a read already under way not store its
        (possibly older) result: the next request reads the store again."""
        self._entries.pop(campaign_id, None)
        self._pending.pop(campaign_id, None)

    async def _refresh(self, campaign_id: str, token: object) -> CachedStatus:
        read_at = self._clock()
        status = await run_in_threadpool(self._read, campaign_id)
        body = render(status)
        entry = CachedStatus(status["project"], body, etag_of(body), read_at)
        if self._still_pending(campaign_id, token):  # not invalidated meanwhile
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[campaign_id] = entry
        return entry

    def _still_pending(self, campaign_id: str, token: object) -> bool:
        under_way = self._pending.get(campaign_id)
        return under_way is not None and under_way[0] is token

    def _forget(self, campaign_id: str, token: object, done: asyncio.Future[CachedStatus]) -> None:
        if self._still_pending(campaign_id, token):
            del self._pending[campaign_id]
        if not done.cancelled():
            done.exception()  # retrieved: no "exception was never retrieved" warning
