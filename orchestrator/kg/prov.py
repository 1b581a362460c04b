"""The registered things as W3C PROV-O: in JSON-LD (for Nexus) and as RDF quads (for the
embedded store), one name for both.

The JSON-LD documents come from `orchestrator.kg.jsonld` (`to_jsonld`), the quads from
`orchestrator.kg.quads` (`to_quads`, built directly; `to_quads_via_jsonld`, the reference it
must equal), and the namespaces and context both use from `orchestrator.kg.vocabulary`.
This module only re-exports them, so every name it had stays where it was.
"""

from __future__ import annotations

from orchestrator.kg.jsonld import (
    COLLECTION_TYPES,
    campaign_document,
    output_document,
    outputs_collection,
    task_document,
    to_jsonld,
)
from orchestrator.kg.quads import (
    campaign_quads,
    jsonld_to_quads,
    output_quads,
    outputs_collection_quads,
    task_quads,
    to_quads,
    to_quads_via_jsonld,
)
from orchestrator.kg.vocabulary import CONTEXT, PREFIXES, PROV, SCHEMA, XSD

__all__ = [
    "COLLECTION_TYPES",
    "CONTEXT",
    "PREFIXES",
    "PROV",
    "SCHEMA",
    "XSD",
    "campaign_document",
    "campaign_quads",
    "jsonld_to_quads",
    "output_document",
    "output_quads",
    "outputs_collection",
    "outputs_collection_quads",
    "task_document",
    "task_quads",
    "to_jsonld",
    "to_quads",
    "to_quads_via_jsonld",
]
