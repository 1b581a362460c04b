"""Errors of the knowledge graph: retry later, or never."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class KnowledgeGraphError(OrchestratorError):
    """Base of the knowledge graph's errors."""


class KnowledgeGraphUnavailable(KnowledgeGraphError):
    """The knowledge graph cannot take the registration now (connection refused, timeout,
    5xx, 429, a store held by another process): the same registration may succeed later."""


class KnowledgeGraphRejected(KnowledgeGraphError):
    """The knowledge graph refused the registration (401, 403, 400, …): retrying the same
    request will not help. `status` is the HTTP status when there is one."""

    def __init__(self, message: str, status: int | None = None):
        self.status = status
        super().__init__(message)


class QueryError(KnowledgeGraphError):
    """A SPARQL query could not be parsed or evaluated; the message is the parser's."""
