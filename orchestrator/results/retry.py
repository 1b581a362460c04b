"""Retrying calls to a results location: which errors are transient, and how long to insist.

A transient error (connection refused or reset, timeouts, 5xx, throttling) is retried with
exponential backoff and jitter until a deadline; anything else (access denied, no such
bucket, a bad request) fails at once: waiting would not fix it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)

FIRST_DELAY = 0.25
MAX_DELAY = 15.0

_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BadDigest",  # the body was damaged on the way: sending it again may work
        "XAmzContentSHA256Mismatch",
    }
)
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,
    socket.timeout,
    asyncio.TimeoutError,
)


def _transient_types() -> tuple[type[BaseException], ...]:
    """The network errors of the S3 libraries, from those already imported: an error of a
    library nobody imported cannot exist (importing aiohttp here would slow every start)."""
    found = list(_TRANSIENT_TYPES)
    boto = sys.modules.get("botocore.exceptions")
    if boto is not None:
        found += [
            boto.EndpointConnectionError,
            boto.ConnectionClosedError,
            boto.ConnectTimeoutError,
            boto.ReadTimeoutError,
            boto.HTTPClientError,
            boto.ResponseStreamingError,
            boto.IncompleteReadError,
        ]
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        found += [aiohttp.ClientConnectionError, aiohttp.ClientPayloadError]
    return tuple(found)


class TransientError(Exception):
    """Raised by our own checks for a condition worth retrying (e.g. a lost upload)."""


def is_transient(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is worth retrying."""
    transient = _transient_types()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (TransientError, *transient)):
            return True
        response = getattr(current, "response", None)  # botocore ClientError
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code in _TRANSIENT_CODES or int(status) >= 500 or int(status) == 429:
                return True
        current = current.__cause__ or current.__context__
    return False


def retrying(action: Callable[[], T], *, deadline: float, what: str) -> T:
    """`action()`, retried on transient errors until `deadline` (a `time.monotonic()`).

    The last error propagates when the deadline passes or the error is not transient.
    """
    delay = FIRST_DELAY
    attempt = 1
    while True:
        try:
            return action()
        except Exception as exc:
            left = deadline - time.monotonic()
            if not is_transient(exc) or left <= 0:
                raise
            pause = min(delay * (0.5 + random.random() / 2), left)
            logger.warning(
                "%s: attempt %d failed (%s); retrying in %.1fs",
                what,
                attempt,
                _short(exc),
                pause,
            )
            time.sleep(pause)
            delay = min(delay * 2, MAX_DELAY)
            attempt += 1


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
