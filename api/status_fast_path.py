"""GET …/campaigns/{id} from the status cache, without FastAPI's routing and dependency
resolution: the busiest route (every poller, every notebook's progress bar), where these two
cost about two thirds of the request's CPU.

Only requests the route itself would answer from the cache are answered here: a bearer token
verified before and still remembered (`TokenVerifier.remembered`: never past its `exp`), its
holder allowed to read a project this process serves, and a fresh cache entry of a campaign
of that same project, with no query string. Every other request (no token, a token not yet
verified, another project, an entry missing or stale, a malformed path) goes on to the route,
which answers it, errors included, as always. So the rules live in one place (api/deps.py,
api/routers/campaigns.py) and this only skips work on the route's own 200 and 304 answers.
It sits inside the access log and the body limit, so those requests are logged and counted
under the route's name as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from api.context import AppContext
from api.deps import BEARER
from api.status_cache import CachedStatus, matches_etag

ROUTE = "/v1/projects/{vlab_id}/{project_id}/campaigns/{campaign_id}"
_NAME = r"[A-Za-z0-9_-]{1,100}"
PATH = re.compile(rf"^/v1/projects/({_NAME})/({_NAME})/campaigns/({_NAME})$")


@dataclass(frozen=True)
class _Route:
    """What the access log and the metrics read of `scope["route"]`: the route's path."""

    path: str = ROUTE


class StatusFastPath:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.route = _Route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            match = PATH.match(scope["path"])
            if match is not None and await self._answer(scope, send, *match.groups()):
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, scope: Scope, send: Send, vlab_id: str, project_id: str, campaign_id: str
    ) -> bool:
        app = scope.get("app")
        context: AppContext | None = getattr(getattr(app, "state", None), "context", None)
        if context is None:
            return False
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
        scope.setdefault("state", {})["subject"] = user.subject
        scope["route"] = self.route
        await _send(send, entry, if_none_match)
        return True


async def _send(send: Send, entry: CachedStatus, if_none_match: str | None) -> None:
    headers = [(b"etag", entry.etag.encode()), (b"cache-control", b"no-cache")]
    if if_none_match is not None and matches_etag(if_none_match, entry.etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-length", str(len(entry.body)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})
