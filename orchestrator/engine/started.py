"""Routes the workers' 'task started' and 'point finished' messages to the engine of their
campaign ('point finished' comes from chunks: engine/execute_chunk.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distributed import Client

from orchestrator.engine.execute import STARTED_TOPIC
from orchestrator.engine.execute_chunk import FINISHED_TOPIC

Handler = Callable[[dict[str, Any]], None]


class StartedRouter:
    """One subscription per topic and client, routing each message to its engine."""

    def __init__(self, client: Client):
        self.handlers: dict[str, Handler] = {}
        self.finished_handlers: dict[str, Handler] = {}
        client.subscribe_topic(STARTED_TOPIC, self._dispatch)
        client.subscribe_topic(FINISHED_TOPIC, self._dispatch_finished)

    @classmethod
    def of(cls, client: Client) -> StartedRouter:
        router = getattr(client, "_orchestrator_started_router", None)
        if router is None:
            router = cls(client)
            client._orchestrator_started_router = router  # type: ignore[attr-defined]
        return router

    def add(self, campaign_id: str, handler: Handler, finished: Handler | None = None) -> None:
        self.handlers[campaign_id] = handler
        if finished is not None:
            self.finished_handlers[campaign_id] = finished

    def remove(self, campaign_id: str) -> None:
        self.handlers.pop(campaign_id, None)
        self.finished_handlers.pop(campaign_id, None)

    def _dispatch(self, event: tuple[float, dict[str, Any]]) -> None:
        _route(event, self.handlers)

    def _dispatch_finished(self, event: tuple[float, dict[str, Any]]) -> None:
        _route(event, self.finished_handlers)


def _route(event: tuple[float, dict[str, Any]], handlers: dict[str, Handler]) -> None:
    _, payload = event
    for msg in payload.get("batch", ()):
        handler = handlers.get(str(msg.get("c")))
        if handler is not None:
            handler(msg)
