"""Reading a campaign spec document (YAML or JSON) into a validated CampaignSpec."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import InvalidRequest, SpecError, SpecIssue
from orchestrator.spec.model import CampaignSpec, Extension
from orchestrator.spec.syntax import non_finite
from orchestrator.spec.validate import check_semantics
from orchestrator.spec.yaml_limits import BoundedLoader, DocumentTooLarge


def parse_document(document: Mapping[str, Any] | CampaignSpec) -> CampaignSpec:
    """Validate a spec document (a mapping) and return the model, or raise SpecError."""
    if isinstance(document, CampaignSpec):
        spec = document
        if issues := non_finite(spec.model_dump(by_alias=True)):
            raise SpecError(issues)
    else:
        if not isinstance(document, Mapping):
            raise SpecError.single("", "a campaign spec is a mapping of fields")
        if issues := non_finite(document):
            raise SpecError(issues)
        try:
            spec = CampaignSpec.model_validate(dict(document))
        except ValidationError as exc:
            raise SpecError(_issues(exc)) from None
    check_semantics(spec)
    return spec


def load_text(text: str, source: str = "<spec>") -> CampaignSpec:
    """Parse YAML or JSON text into a validated spec (SpecError names what is wrong)."""
    return parse_document(_from_text(text, source))


def read_document(path: str | Path) -> dict[str, Any]:
    """A spec file's document, not validated yet: the one way a spec file is read (the CLI,
    `connect()` and the HTTP client all come here; the service validates what they send)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError.single("", f"cannot read {path}: {exc.strerror}") from None
    document = _from_text(text, str(path))
    if not isinstance(document, dict):
        raise SpecError.single("", f"{path} does not hold a campaign spec (a mapping)")
    return document


def load_file(path: str | Path) -> CampaignSpec:
    return parse_document(read_document(path))


def import_paths_for(spec_path: str | os.PathLike[str] | None) -> list[str]:
    """The folders a spec's callables are imported from: the spec file's folder, then the
    submitter's working directory (both sent with the campaign, so that workers and a
    resumed runner import the same modules)."""
    paths = [os.getcwd()]
    if spec_path is not None:
        folder = str(Path(spec_path).resolve().parent)
        if folder not in paths:
            paths.insert(0, folder)
    return paths


def _from_text(text: str, source: str) -> Any:
    # JSON is YAML, but JSON's errors read better from json
    try:
        if text.lstrip().startswith("{"):
            document = json.loads(text)
        else:
            document = yaml.load(text, Loader=BoundedLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError.single("", f"{source} is not valid YAML/JSON: {exc}") from None
    except RecursionError:
        raise SpecError.single("", f"{source} is nested too deeply") from None
    except DocumentTooLarge as exc:
        raise SpecError.single("", f"{source}: {exc}") from None
    if document is None:
        raise SpecError.single("", f"{source} is empty")
    return document


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


def with_extension(
    document: Mapping[str, Any],
    *,
    parameters: dict[str, Any] | None = None,
    sweep: str = "product",
    points: list[dict[str, Any]] | None = None,
) -> CampaignSpec:
    """A stored spec with one more block of points: a sub-grid (`parameters`, as in a spec,
    with `sweep`) or explicit `points`. Validated as a spec is (SpecError names the field)."""
    if (parameters is None) == (points is None):
        raise InvalidRequest("give either parameters (a sub-grid) or points")
    if points is not None:
        try:
            block = Extension.from_points(points).model_dump(mode="json")
        except (ValueError, ValidationError) as exc:
            raise SpecError.single("points", str(exc)) from None
    else:
        block = {"parameters": parameters, "sweep": sweep}
    extended = dict(document)
    extended["extensions"] = [*extended.get("extensions", []), block]
    return parse_document(extended)
