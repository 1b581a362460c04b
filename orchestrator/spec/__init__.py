"""Campaign specs: the model, loading from YAML/JSON, and validation."""

from orchestrator.spec.load import (
    import_paths_for,
    load_file,
    load_text,
    parse_document,
    read_document,
    with_extension,
)
from orchestrator.spec.model import BatchSpec, CampaignSpec, Resources, Step
from orchestrator.spec.validate import add_import_paths, import_callable, topological_order

__all__ = [
    "BatchSpec",
    "CampaignSpec",
    "Resources",
    "Step",
    "add_import_paths",
    "import_callable",
    "import_paths_for",
    "load_file",
    "load_text",
    "parse_document",
    "read_document",
    "topological_order",
    "with_extension",
]
