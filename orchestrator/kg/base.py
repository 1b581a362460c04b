"""The one interface the engine registers provenance through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from orchestrator.kg.model import Registrable


@runtime_checkable
class KnowledgeGraph(Protocol):
    """Where campaigns, task attempts and outputs are registered.

    `register` is idempotent: each item is stored under its own deterministic IRI, and
    registering an item again replaces what was said about that IRI (the same item twice
    leaves one copy; a changed item leaves only the new statements). It raises
    `KnowledgeGraphUnavailable` when a later retry may succeed and `KnowledgeGraphRejected`
    when it will not; either way some items of the batch may already be registered, which
    the next attempt of the whole batch makes harmless.
    """

    def register(self, items: Sequence[Registrable]) -> None: ...

    def close(self) -> None:
        """Release connections; safe to call twice."""
        ...
