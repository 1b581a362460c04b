"""What the JSON-LD documents (`orchestrator.kg.jsonld`) and the quads built directly
(`orchestrator.kg.quads`) share, so that both say the same thing: the namespaces and the
inline JSON-LD `CONTEXT` (no remote context to resolve), and how values that are not plain
JSON scalars become text (canonical JSON: sorted keys, no spaces).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.kg.model import VOCAB_NAMESPACE

PROV = "http://www.w3.org/ns/prov#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SCHEMA = "http://schema.org/"

CONTEXT: dict[str, str] = {
    "prov": PROV,
    "xsd": XSD,
    "schema": SCHEMA,
    "wf": VOCAB_NAMESPACE,
}
"""The JSON-LD context every document carries inline (no remote context to resolve)."""

PREFIXES = "".join(f"PREFIX {name}: <{iri}>\n" for name, iri in CONTEXT.items())
"""The same prefixes for SPARQL queries."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def parameter_value(value: Any) -> Any:
    """Scalars stay typed literals (so SPARQL can compare numbers); the rest is JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return canonical_json(value)
