"""Whether a long-lived response (the live event stream) may go on for the caller who opened it.

A request is authorized once, when it starts; a stream may outlive its token. `StreamAccess`
is asked before every step of the stream and guarantees:

- once the token is past its `exp` (plus the verifier's leeway, as for any request), the answer
  is a refusal, at once and without any I/O;
- at most every `recheck_seconds` (and no more often) the token is verified again, as a new
  request would verify it, and the caller must still be allowed to `read` the project: a
  signing key the issuer has withdrawn, or a token that no longer names the project, ends the
  stream then. The verification runs in the thread pool (it may fetch the issuer's keys).

A refusal is the error a new request would get (`AuthError`: 401; not a member any more:
`NotFound`, as every route answers then; a member without `read`: `Forbidden`), its reason
safe to show (never the token).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from api.auth import Principal, TokenVerifier
from api.errors import ApiError, AuthError, Forbidden, NotFound


@dataclass
class StreamAccess:
    verifier: TokenVerifier
    token: str
    project: str
    user: Principal
    recheck_seconds: float
    _checked: float = field(default_factory=time.monotonic)

    async def refusal(self) -> ApiError | None:
        """None while the caller may go on reading, else why not."""
        if time.time() >= self.user.valid_until:
            return AuthError("token expired")
        if time.monotonic() - self._checked < self.recheck_seconds:
            return None
        self._checked = time.monotonic()
        try:
            user = await run_in_threadpool(self.verifier.verify, self.token)
        except AuthError as exc:
            return exc
        if not user.roles(self.project):
            return NotFound(f"no project {self.project}")
        if not user.can(self.project, "read"):
            return Forbidden(f"your role in {self.project} does not allow read")
        self.user = user
        return None
