"""Bearer tokens: verification against the issuer's JWKS, and who may do what in a project.

Plain Python (no FastAPI): the app's dependencies look a token up with
`TokenVerifier.remembered` on the event loop (a dict lookup) and only on a miss call
`TokenVerifier.verify` from a thread pool (it may fetch the issuer's keys), so the verifier is
thread-safe and does its own, rate-limited, JWKS fetching (`api.keys`).

A token is accepted only when it is signed with an asymmetric algorithm the verifier allows,
by a key of the issuer's JWKS, and carries `exp`, `iat`, `iss` and `aud` with the expected
issuer and audience; every refusal is an `AuthError` whose reason is safe to show.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import jwt

from api.errors import AuthError
from api.keys import FETCH_FAILED as FETCH_FAILED  # also importable from here
from api.keys import key_source

ROLE_PERMISSIONS: Final[Mapping[str, frozenset[str]]] = {
    "member": frozenset({"read", "submit"}),
    "admin": frozenset({"read", "submit", "delete"}),
}
PERMISSIONS: Final = frozenset().union(*ROLE_PERMISSIONS.values())

_ID = r"[A-Za-z0-9_-]{1,100}"
_ROLE = re.compile(_ID)
_PROJECT = re.compile(rf"{_ID}/{_ID}")
_GROUP = re.compile(rf"/proj/({_ID}/{_ID})/({_ID})")

# Only asymmetric algorithms: with HS*, the public key a verifier knows would be the secret.
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud")
# Who the caller is, first found wins: Keycloak leaves `sub` out of some tokens (e.g. a service
# account's, or with "lightweight" access tokens), which still name a user or a client.
PRINCIPAL_CLAIMS: Final = ("sub", "preferred_username", "azp", "client_id")
# The realm role of the service's own identity (its Keycloak client's service account), the
# only caller of internal routes such as the provisioner's; end users never hold it.
SERVICE_ROLE: Final = "orchestrator-service"


def is_project(project: str) -> bool:
    """Whether `project` is a well-formed "vlab_id/project_id"."""
    return _PROJECT.fullmatch(project) is not None


def project_group(project: str, role: str) -> str:
    """The `groups` entry making its holder a `role` of `project`; what parse_groups reads."""
    if not is_project(project):
        raise ValueError(f"project must be 'vlab_id/project_id', not {project!r}")
    if _ROLE.fullmatch(role) is None:
        raise ValueError(f"role must be 1-100 letters, digits, '_' or '-', not {role!r}")
    return f"/proj/{project}/{role}"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, and the projects it belongs to."""

    subject: str
    username: str | None
    memberships: dict[str, frozenset[str]] = field(hash=False)
    realm_roles: frozenset[str] = frozenset()
    valid_until: float = field(default=math.inf, compare=False)
    """When its token stops being accepted (epoch seconds: `exp` plus the verifier's leeway)."""

    @property
    def is_service(self) -> bool:
        """Whether the caller is the service itself (holds SERVICE_ROLE), not an end user."""
        return SERVICE_ROLE in self.realm_roles

    def roles(self, project: str) -> frozenset[str]:
        return self.memberships.get(project, frozenset())

    def can(self, project: str, permission: str) -> bool:
        """Whether one of the caller's roles in `project` grants `permission`.

        An unknown permission is a programming error, not a "no": it raises ValueError.
        """
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        return any(
            permission in ROLE_PERMISSIONS.get(role, frozenset()) for role in self.roles(project)
        )


def parse_groups(groups: object) -> dict[str, frozenset[str]]:
    """Project memberships from a `groups` claim of "/proj/{vlab_id}/{project_id}/{role}".

    Other groups (the realm has many) and malformed entries are ignored rather than
    rejected: one odd group must not lock a user out of every project.
    """
    if not isinstance(groups, list | tuple):
        return {}
    roles: dict[str, set[str]] = {}
    for entry in groups:
        match = _GROUP.fullmatch(entry) if isinstance(entry, str) else None
        if match is not None:
            roles.setdefault(match[1], set()).add(match[2])
    return {project: frozenset(names) for project, names in roles.items()}


VERIFIED_MAX: Final = 10_000


class TokenVerifier:
    """Checks bearer tokens of one issuer and audience; returns who the caller is.

    Keys come from a static JWKS (`keys`, the embedded issuer) or from `jwks_url`, fetched
    on first use, cached, and refetched when a token names an unknown `kid` (key rotation)
    or the cache is older than `cache_ttl` (removed keys stop working) — but at most once
    per `min_refresh_interval`, so a flood of bogus kids cannot hammer the issuer.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        keys: list[dict[str, Any]] | None = None,
        algorithms: Sequence[str] = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256"),
        leeway: float = 30.0,
        min_refresh_interval: float = 10.0,
        http_timeout: float = 5.0,
        cache_ttl: float = 600.0,
        remember_seconds: float = 0.0,
    ):
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        self._issuer = issuer
        self._audience = audience
        self._algorithms = _allowed_algorithms(algorithms)
        self._verified: dict[bytes, tuple[Principal, float]] = {}
        self._remember = remember_seconds
        self._leeway = leeway
        self._ring_for = key_source(
            jwks_url,
            keys,
            self._algorithms,
            min_refresh_interval=min_refresh_interval,
            http_timeout=http_timeout,
            cache_ttl=cache_ttl,
        )

    def verify(self, token: str) -> Principal:
        """The caller the token proves, or AuthError with a reason safe to show.

        With `remember_seconds`, a verified token is remembered that long at most (never past
        its `exp`), so a client polling with the same token is not checked by RSA every time.
        """
        if self._remember <= 0:
            return self._verify(token)[0]
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[digest] = (principal, min(expires, now + self._remember))
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The caller of a token verified before and still remembered (never past its
        `exp`), else None: then `verify` it. Never blocks (no I/O, no signature check), so
        the app calls it on the event loop."""
        if self._remember <= 0:
            return None
        cached = self._verified.get(hashlib.sha256(token.encode()).digest())
        if cached is not None and cached[1] > time.time():
            return cached[0]
        return None

    def _verify(self, token: str) -> tuple[Principal, float]:
        header = _unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthError("unsupported algorithm")
        key = self._signing_key(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_reason(exc)) from exc
        expires = float(claims["exp"])
        return _principal(claims, expires + self._leeway), expires

    def _signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        ring = self._ring_for(kid)
        if not ring.knows(kid):
            raise AuthError("unknown signing key" if kid is not None else "token has no key id")
        key = ring.key(kid, alg)
        if key is None:
            raise AuthError("algorithm not allowed for this key")
        return key


def _allowed_algorithms(algorithms: Sequence[str]) -> frozenset[str]:
    if not algorithms or not set(algorithms) <= ASYMMETRIC_ALGORITHMS:
        raise ValueError(
            f"algorithms must be some of {sorted(ASYMMETRIC_ALGORITHMS)}, not {list(algorithms)}"
        )
    return frozenset(algorithms)


def _unverified_header(token: str) -> dict[str, Any]:
    """The token's header, only to choose the key; PyJWT also checks `kid` is a string."""
    # A compact JWS is ASCII; anything else would fail deeper with a less clear error.
    if not isinstance(token, str) or not token.isascii():
        raise AuthError("malformed token")
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError("malformed token") from exc


# Checked in order: subclasses before their bases (InvalidSignatureError is a DecodeError).
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "unsupported algorithm"),
    (jwt.exceptions.InvalidSubjectError, "invalid subject"),
    (jwt.InvalidKeyError, "unusable signing key"),
    (jwt.InvalidTokenError, "malformed token"),
)


def _reason(exc: jwt.PyJWTError) -> str:
    """A short reason for a PyJWT error; PyJWT's own messages are not meant for clients."""
    if isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim in REQUIRED_CLAIMS:
        return f"missing claim {exc.claim}"
    return next((reason for kind, reason in _REASONS if isinstance(exc, kind)), "invalid token")


def _principal(claims: dict[str, Any], valid_until: float) -> Principal:
    """The caller: `sub` if the token has one (PyJWT checked it is a string), else the first
    of `preferred_username`, `azp`, `client_id` that is a non-empty string."""
    if "sub" in claims:
        subject = claims["sub"]
        if not subject:
            raise AuthError("invalid subject")
    else:
        subject = next(
            (v for c in PRINCIPAL_CLAIMS if isinstance(v := claims.get(c), str) and v), None
        )
        if subject is None:
            raise AuthError("missing claim sub")  # nor any other claim naming the caller
    username = claims.get("preferred_username")
    return Principal(
        subject=subject,
        username=username if isinstance(username, str) else None,
        memberships=parse_groups(claims.get("groups")),
        realm_roles=parse_realm_roles(claims),
        valid_until=valid_until,
    )


def parse_realm_roles(claims: dict[str, Any]) -> frozenset[str]:
    """Realm roles: Keycloak's `realm_access.roles`, or a flat `roles` claim (other issuers);
    anything that is not a list of strings is ignored."""
    access = claims.get("realm_access")
    found: list[object] = []
    for roles in (access.get("roles") if isinstance(access, dict) else None, claims.get("roles")):
        if isinstance(roles, list):
            found += roles
    return frozenset(role for role in found if isinstance(role, str))
