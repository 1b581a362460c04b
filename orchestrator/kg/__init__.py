"""Provenance of campaigns in a knowledge graph (W3C PROV-O): an embedded RDF store by
default, Blue Brain Nexus Delta in production, behind one small interface.

Names are imported on first use, so that reading the settings does not load pyoxigraph.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "KnowledgeGraph": "orchestrator.kg.base",
    "EmbeddedKnowledgeGraph": "orchestrator.kg.embedded",
    "QueryResult": "orchestrator.kg.embedded",
    "KnowledgeGraphError": "orchestrator.kg.errors",
    "KnowledgeGraphRejected": "orchestrator.kg.errors",
    "KnowledgeGraphUnavailable": "orchestrator.kg.errors",
    "QueryError": "orchestrator.kg.errors",
    "BASE_NAMESPACE": "orchestrator.kg.model",
    "VOCAB_NAMESPACE": "orchestrator.kg.model",
    "CampaignProvenance": "orchestrator.kg.model",
    "OutputEntity": "orchestrator.kg.model",
    "Registrable": "orchestrator.kg.model",
    "TaskActivity": "orchestrator.kg.model",
    "TaskRef": "orchestrator.kg.model",
    "NexusKnowledgeGraph": "orchestrator.kg.nexus",
    "to_jsonld": "orchestrator.kg.jsonld",
    "to_quads": "orchestrator.kg.quads",
    "KnowledgeGraphSettings": "orchestrator.kg.settings",
    "NexusSettings": "orchestrator.kg.settings",
    "embedded_path": "orchestrator.kg.settings",
    "open_knowledge_graph": "orchestrator.kg.factory",
    "open_registrar": "orchestrator.kg.factory",
}

__all__ = [
    "BASE_NAMESPACE",
    "VOCAB_NAMESPACE",
    "CampaignProvenance",
    "EmbeddedKnowledgeGraph",
    "KnowledgeGraph",
    "KnowledgeGraphError",
    "KnowledgeGraphRejected",
    "KnowledgeGraphSettings",
    "KnowledgeGraphUnavailable",
    "NexusKnowledgeGraph",
    "NexusSettings",
    "OutputEntity",
    "QueryError",
    "QueryResult",
    "Registrable",
    "TaskActivity",
    "TaskRef",
    "embedded_path",
    "open_knowledge_graph",
    "open_registrar",
    "to_jsonld",
    "to_quads",
]

if TYPE_CHECKING:
    from orchestrator.kg.base import KnowledgeGraph
    from orchestrator.kg.embedded import EmbeddedKnowledgeGraph, QueryResult
    from orchestrator.kg.errors import (
        KnowledgeGraphError,
        KnowledgeGraphRejected,
        KnowledgeGraphUnavailable,
        QueryError,
    )
    from orchestrator.kg.factory import open_knowledge_graph, open_registrar
    from orchestrator.kg.jsonld import to_jsonld
    from orchestrator.kg.model import (
        BASE_NAMESPACE,
        VOCAB_NAMESPACE,
        CampaignProvenance,
        OutputEntity,
        Registrable,
        TaskActivity,
        TaskRef,
    )
    from orchestrator.kg.nexus import NexusKnowledgeGraph
    from orchestrator.kg.quads import to_quads
    from orchestrator.kg.settings import (
        KnowledgeGraphSettings,
        NexusSettings,
        embedded_path,
    )


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'orchestrator.kg' has no attribute {name!r}")
