"""GET …/campaigns/{id} from the status cache, before FastAPI and its middleware: the
busiest route (every poller, every notebook's progress bar), where routing, dependency
resolution and the middleware layers cost most of the request's CPU.

Only requests the route itself would answer from the cache are answered here: a bearer token
verified before and still remembered (`TokenVerifier.remembered`: never past its `exp`), its
holder allowed to read a project this process serves, and a fresh cache entry of a campaign
of that same project, with no query string. Every other request (no token, a token not yet
verified, another project, an entry missing or stale, a malformed path) goes on to the app,
which answers it, errors included, as always. So the rules live in one place (api/deps.py,
api/routers/campaigns.py) and this only skips work on the route's own 200 and 304 answers.
`ServiceApp` (the app `create_app` makes) asks it first; what it answers is counted in the
metrics and written to the access log under the route's name, as the route's answers are.
"""

from __future__ import annotations

import re
import time

from starlette.types import Scope, Send

from api.context import AppContext
from api.deps import BEARER
from api.middleware import log_request
from api.status_cache import CachedStatus, matches_etag

ROUTE = "/v1/projects/{vlab_id}/{project_id}/campaigns/{campaign_id}"
_NAME = r"[A-Za-z0-9_-]{1,100}"
PATH = re.compile(rf"^/v1/projects/({_NAME})/({_NAME})/campaigns/({_NAME})$")


class StatusFastPath:
    async def answer(self, scope: Scope, send: Send, context: AppContext | None) -> bool:
        """True when this request was answered (and logged) here."""
        if (
            context is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or scope.get("root_path")
        ):
            return False
        match = PATH.match(scope["path"])
        if match is None:
            return False
        start = time.perf_counter()
        vlab_id, project_id, campaign_id = match.groups()
        authorization = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        token = BEARER.match(authorization or "")
        if token is None:
            return False
        user = context.verifier.remembered(token.group(1))
        project = f"{vlab_id}/{project_id}"
        if user is None or not context.serves(project) or not user.can(project, "read"):
            return False
        entry = context.statuses.fresh(campaign_id)
        if entry is None or entry.project != project:
            return False
        status = 500
        try:
            status = await _send(send, entry, if_none_match)
        finally:
            log_request(scope, ROUTE, status, start, user.subject)
        return True


async def _send(send: Send, entry: CachedStatus, if_none_match: str | None) -> int:
    """Send the cached answer (or 304); returns its status."""
    headers = [(b"etag", entry.etag.encode()), (b"cache-control", b"no-cache")]
    if if_none_match is not None and matches_etag(if_none_match, entry.etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 304
    headers += [
        (b"content-length", str(len(entry.body)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})
    return 200
