"""Reading a campaign spec document (YAML or JSON) into a validated CampaignSpec."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import SpecError, SpecIssue
from orchestrator.spec.model import CampaignSpec
from orchestrator.spec.validate import check_semantics


def parse_document(document: Mapping[str, Any] | CampaignSpec) -> CampaignSpec:
    """Validate a spec document (a mapping) and return the model, or raise SpecError."""
    if isinstance(document, CampaignSpec):
        spec = document
    else:
        if not isinstance(document, Mapping):
            raise SpecError.single("", "a campaign spec is a mapping of fields")
        try:
            spec = CampaignSpec.model_validate(dict(document))
        except ValidationError as exc:
            raise SpecError(_issues(exc)) from None
    check_semantics(spec)
    return spec


def load_text(text: str, source: str = "<spec>") -> CampaignSpec:
    """Parse YAML or JSON text (JSON is YAML, but JSON errors read better from json)."""
    stripped = text.lstrip()
    try:
        document = json.loads(text) if stripped.startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError.single("", f"{source} is not valid YAML/JSON: {exc}") from None
    if document is None:
        raise SpecError.single("", f"{source} is empty")
    return parse_document(document)


def load_file(path: str | Path) -> CampaignSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError.single("", f"cannot read {path}: {exc.strerror}") from None
    return load_text(text, str(path))


def _issues(exc: ValidationError) -> list[SpecIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "is required"
        issues.append(SpecIssue(".".join(loc), message))
    return issues


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))
