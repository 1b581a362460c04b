"""Every error the api package raises on purpose; the app maps each class of `ApiError` to one
response (the others are refusals at start-up)."""

from __future__ import annotations

from orchestrator.errors import SettingsError


class ApiError(Exception):
    """Base of the api package's own errors. `reason` is safe to send to the client."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class AuthError(ApiError):
    """The bearer token was rejected: 401 with `WWW-Authenticate: Bearer error="invalid_token"`.

    The reason names what was wrong ("token expired", "wrong audience", …) and never contains
    the token, so it can go into the response and the logs as is.
    """


class MissingToken(AuthError):
    """The request carried no bearer token: 401 with a bare `WWW-Authenticate: Bearer`
    (RFC 6750 §3.1: no error code when the client simply did not authenticate)."""

    def __init__(self, reason: str = "missing bearer token"):
        super().__init__(reason)


class Forbidden(ApiError):
    """An authenticated user lacks a permission on a project: 403."""


class NotFound(ApiError):
    """Not found (or not visible to this user): 404."""


class DevIssuerRefused(SettingsError):
    """The embedded development issuer may not serve here: a refusal at start-up (never a
    response), whose message names the fix."""
