"""Opens what the settings name: the knowledge graph (embedded or Nexus), and the registrar
that sends the store's outbox to it. The one place that turns `kg` settings into objects."""

from __future__ import annotations

from pathlib import Path

from orchestrator.kg.base import KnowledgeGraph
from orchestrator.kg.outbox import Registrar
from orchestrator.kg.settings import KnowledgeGraphSettings, embedded_path
from orchestrator.store import Store


def open_knowledge_graph(settings: KnowledgeGraphSettings, data_dir: Path) -> KnowledgeGraph:
    """The configured knowledge graph; `close()` it when done."""
    if settings.kind == "nexus":
        from orchestrator.kg.nexus import NexusKnowledgeGraph

        return NexusKnowledgeGraph(settings.nexus)
    from orchestrator.kg.embedded import EmbeddedKnowledgeGraph

    return EmbeddedKnowledgeGraph(embedded_path(settings, data_dir))


def open_registrar(store: Store, settings: KnowledgeGraphSettings, data_dir: Path) -> Registrar:
    """A registrar of `store`'s outbox into the configured graph (opened on first use);
    `start()` it, `close(drain=…)` it."""
    return Registrar(store, lambda: open_knowledge_graph(settings, data_dir))
