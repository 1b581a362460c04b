"""The issuer's signing keys, as the token verifier (`api.auth.TokenVerifier`) looks them up.

Only signing keys count (Keycloak's encryption key in the same set is skipped), and each is
usable only with the allowed algorithms it fits (family, curve, its own `alg`). A fixed JWKS
is read once; an issuer's JWKS URL is fetched on first use, cached, and fetched again for an
unknown `kid` or a cache older than its TTL, but at most once per refresh interval: one
thread fetches while the others wait for its result (or, when the keys are only stale, keep
using them), and when a fetch fails the keys fetched before still serve the kids they know.
Failures are logged on the `api.auth` logger and reach the caller as `AuthError(FETCH_FAILED)`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
import jwt

from api.errors import AuthError

# The verifier's logger: fetching its keys is part of checking tokens.
logger = logging.getLogger("api.auth")

FETCH_FAILED: Final = "cannot fetch the issuer's keys"


def key_source(
    jwks_url: str | None,
    keys: list[dict[str, Any]] | None,
    algorithms: frozenset[str],
    **remote: float,
) -> Callable[[str | None], KeyRing]:
    """kid -> the key ring to look it up in: a fixed one, or the issuer's, kept current."""
    if keys is not None and jwks_url is None:
        ring = KeyRing.from_jwks({"keys": keys}, algorithms)
        return lambda kid: ring
    if jwks_url is not None and keys is None:
        return _RemoteKeys(jwks_url, algorithms, **remote).ring_for
    raise ValueError("give either jwks_url or keys")


@dataclass(frozen=True)
class KeyRing:
    """The usable keys of one JWKS, one `PyJWK` per (kid, algorithm) pair.

    A PyJWK is bound to one algorithm (by default RS256 for any RSA key), so a key without
    an `alg` gets one PyJWK per allowed algorithm of its family; a key with `alg` only that.
    """

    keys: dict[tuple[str | None, str], jwt.PyJWK]
    kids: tuple[str | None, ...]  # every signing key, usable or not, to tell "unknown" apart

    @classmethod
    def from_jwks(cls, jwks: object, algorithms: frozenset[str]) -> KeyRing:
        entries = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(entries, list):
            raise ValueError("not a JWKS: no 'keys' list")
        signing = [jwk for jwk in entries if _is_signing_jwk(jwk)]
        keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
        for jwk in signing:
            for alg in sorted(algorithms):
                if jwk.get("alg", alg) == alg and (key := _pyjwk(jwk, alg)) is not None:
                    keys[jwk.get("kid"), alg] = key
        if not keys:
            raise ValueError("the JWKS has no usable signing key")
        return cls(keys, tuple(jwk.get("kid") for jwk in signing))

    def knows(self, kid: str | None) -> bool:
        """A token without kid may only use the one key of a single-key JWKS."""
        return len(self.kids) == 1 if kid is None else kid in self.kids

    def key(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        return self.keys.get((self.kids[0] if kid is None else kid, alg))


def _is_signing_jwk(jwk: object) -> bool:
    """Keycloak publishes its encryption key (use "enc") in the same set; skip such keys."""
    return (
        isinstance(jwk, dict)
        and jwk.get("use", "sig") == "sig"
        and isinstance(jwk.get("kid"), str | None)
    )


def _pyjwk(jwk: dict[str, Any], alg: str) -> jwt.PyJWK | None:
    """The key for `alg`, or None when the JWK does not fit it (family, curve, fields)."""
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        key.Algorithm.prepare_key(key.key)  # catches an EC key on the wrong curve now
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
    return key


class _RemoteKeys:
    """The issuer's JWKS over HTTP: cached, refreshed at most once per interval.

    Lookups of a known kid read the current ring without locking (the ring is immutable
    and replaced whole); only refreshes take the lock, so one thread fetches while the
    others wait and then use its result instead of fetching again.
    """

    def __init__(
        self,
        url: str,
        algorithms: frozenset[str],
        *,
        min_refresh_interval: float,
        http_timeout: float,
        cache_ttl: float,
    ):
        if httpx.URL(url).scheme not in ("http", "https"):
            raise ValueError(f"jwks_url must be http(s): {url!r}")
        self._url = url
        self._algorithms = algorithms
        self._min_interval = min_refresh_interval
        self._timeout = http_timeout
        self._ttl = cache_ttl
        self._lock = threading.Lock()
        self._ring: KeyRing | None = None
        self._fetched_at = float("-inf")
        self._attempted_at: float | None = None

    def ring_for(self, kid: str | None) -> KeyRing:
        ring = self._ring
        if ring is None or not ring.knows(kid):
            with self._lock:
                return self._refresh(ring, kid)
        if time.monotonic() - self._fetched_at < self._ttl:
            return ring
        # Stale: refresh, unless another thread is at it already; the old keys serve meanwhile.
        if not self._lock.acquire(blocking=False):
            return ring
        try:
            return self._refresh(ring, kid)
        finally:
            self._lock.release()

    def _refresh(self, seen: KeyRing | None, kid: str | None) -> KeyRing:
        """Fetch the JWKS again unless that was tried too recently; the lock is held."""
        current = self._ring
        if current is not None and current is not seen:
            return current  # another thread refreshed while this one waited
        now = time.monotonic()
        if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
            if current is None:
                raise AuthError(FETCH_FAILED)
            return current  # rate-limited: the caller reports the unknown kid
        self._attempted_at = now
        try:
            ring = KeyRing.from_jwks(self._fetch(), self._algorithms)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("cannot fetch the JWKS from %s: %s", self._url, exc)
            if current is not None and current.knows(kid):
                return current  # stale but still the best we have
            raise AuthError(FETCH_FAILED) from exc
        self._ring, self._fetched_at = ring, now
        return ring

    def _fetch(self) -> object:
        response = httpx.get(
            self._url, timeout=self._timeout, headers={"Accept": "application/json"}
        )
        response.raise_for_status()
        return response.json()
