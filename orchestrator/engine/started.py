"""Routes the workers' 'task started' messages to the engine of their campaign."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distributed import Client

from orchestrator.engine.execute import STARTED_TOPIC


class StartedRouter:
    """One topic subscription per client, routing 'task started' events to their engine."""

    def __init__(self, client: Client):
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        client.subscribe_topic(STARTED_TOPIC, self._dispatch)

    @classmethod
    def of(cls, client: Client) -> StartedRouter:
        router = getattr(client, "_orchestrator_started_router", None)
        if router is None:
            router = cls(client)
            client._orchestrator_started_router = router  # type: ignore[attr-defined]
        return router

    def add(self, campaign_id: str, handler: Callable[[dict[str, Any]], None]) -> None:
        self.handlers[campaign_id] = handler

    def remove(self, campaign_id: str) -> None:
        self.handlers.pop(campaign_id, None)

    def _dispatch(self, event: tuple[float, dict[str, Any]]) -> None:
        _, payload = event
        for msg in payload.get("batch", ()):
            handler = self.handlers.get(str(msg.get("c")))
            if handler is not None:
                handler(msg)
