"""Provenance of campaigns in a knowledge graph (W3C PROV-O): an embedded RDF store by
default, Blue Brain Nexus Delta in production, behind one small interface."""

from orchestrator.kg.base import KnowledgeGraph
from orchestrator.kg.embedded import EmbeddedKnowledgeGraph, QueryResult
from orchestrator.kg.errors import (
    KnowledgeGraphError,
    KnowledgeGraphRejected,
    KnowledgeGraphUnavailable,
    QueryError,
)
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
from orchestrator.kg.prov import to_jsonld, to_quads
from orchestrator.kg.settings import (
    KnowledgeGraphSettings,
    NexusSettings,
    embedded_path,
    open_knowledge_graph,
)

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
    "to_jsonld",
    "to_quads",
]
