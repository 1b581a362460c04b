"""The front door as an AWS Lambda function behind API Gateway, through Mangum.

Handler: `api.lambda_handler.handler`. API Gateway's HTTP API (payload format 2.0) and REST
API events are both understood (Mangum infers which). The settings come from the function's
environment (`ORCHESTRATOR_…`), as for `serve`; the app is the front door's: the REST API over
the shared store, without a runner (campaigns run in the projects' instances).

It needs an external issuer (`ORCHESTRATOR_AUTH__JWKS_URL` and `ORCHESTRATOR_AUTH__ISSUER`):
the embedded development issuer keeps its key in the data folder, which on Lambda is each
execution environment's own `/tmp`, so its tokens could not be checked anywhere else.

The app's lifespan runs once per execution environment (at the first invocation), not once per
request as Mangum's own lifespan handling does: the store's connection pool and the issuer's
keys (fetched and cached by the verifier) then serve every warm invocation. Nothing happens at
import time.

Nothing runs between invocations, so the front door's reconcile loop is a schedule: an
EventBridge rule (`rate(1 minute)`) invoking the same function. A scheduled event (its
`detail-type` is `Scheduled Event`, or the rule's input is `{"orchestrator": "reconcile"}`)
moves every project with work one stage further (`orchestrator.platform.step`): its cluster
created, its instance started, idle ones stopped; the answer says what was done, by project.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import FastAPI
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from mangum.protocols import LifespanCycle

from api.errors import DevIssuerRefused
from api.issuer import EXTERNAL_ISSUER_FIX
from api.main import create_app
from api.roles import Role
from orchestrator.platform.step import reconcile_once
from orchestrator.settings import Settings, load_settings

# Bodies of these types go back as text; any other is base64 (API Gateway decodes it).
TEXT_TYPES = [*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]


def front_door_app(settings: Settings) -> FastAPI:
    """The app a front door serves (the one place that chooses the role)."""
    return create_app(settings, run_campaigns=False, role=Role.FRONT_DOOR)


def is_scheduled(event: dict[str, Any]) -> bool:
    """An EventBridge schedule's event (not an API Gateway request)."""
    return event.get("detail-type") == "Scheduled Event" or event.get("orchestrator") == (
        "reconcile"
    )


class FrontDoorHandler:
    """A Lambda handler: API Gateway events in, API Gateway responses out.

    It owns the event loop the app lives on (set as the thread's loop before each call, so
    whatever else ran asyncio on the thread in between does not matter); `close` runs the
    app's shutdown (Lambda itself just freezes, then discards, the environment).
    """

    def __init__(self, settings: Settings | None = None):
        settings = settings or load_settings()
        if not settings.auth.jwks_url:
            raise DevIssuerRefused(
                f"the front door on Lambda needs an issuer: {EXTERNAL_ISSUER_FIX}"
            )
        app = front_door_app(settings)
        self._app = app
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)  # Mangum runs everything on the thread's loop
        self._adapter = Mangum(app, lifespan="off", text_mime_types=TEXT_TYPES)
        self._lifespan = LifespanCycle(app, "on")
        try:
            self._lifespan.__enter__()  # the app's start-up; a failure raises LifespanFailure
        except BaseException:
            self._release_loop()
            raise
        self._closed = False

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("the handler is closed")
        if is_scheduled(event):
            return {"reconciled": self.reconcile()}
        asyncio.set_event_loop(self._loop)
        return self._adapter(event, context)

    def reconcile(self) -> dict[str, str]:
        """One reconcile pass of the front door; what was done, by project."""
        return reconcile_once(self._app.state.context.front_door)

    def close(self) -> None:
        """Run the app's shutdown and close the loop; safe to repeat."""
        if self._closed:
            return
        self._closed = True
        asyncio.set_event_loop(self._loop)
        try:
            self._lifespan.__exit__(None, None, None)
        finally:
            self._release_loop()

    def _release_loop(self) -> None:
        asyncio.set_event_loop(None)  # as `asyncio.run` leaves the thread
        self._loop.close()


@functools.cache
def _handler() -> FrontDoorHandler:
    return FrontDoorHandler()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: the execution environment's front door, built from settings
    at its first invocation."""
    return _handler()(event, context)
