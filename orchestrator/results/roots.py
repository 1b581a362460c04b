"""Where a project may keep results: under one of the roots the service's settings allow.

A location and a root are compared once normalised: a path (or `file://` URL) is made
absolute from the current folder, `~` expanded and symbolic links and `..` resolved; for
other schemes (`s3://bucket/prefix`, `cluster:///path`) the scheme and the bucket must be
equal exactly and the path is normalised (`..` resolved, never above `/`). A location is
allowed when its path is a root's path or lies below it. `{vlab}` and `{project}` in a root
are the project's two parts, so one setting gives each project a folder of its own.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from orchestrator.errors import SpecError


class Place(NamedTuple):
    scheme: str
    bucket: str
    path: str


def normalise(location: str) -> Place:
    """The location's scheme, bucket (or host) and normalised absolute path."""
    if "://" not in location or location.lower().startswith("file://"):
        path = location[len("file://") :] if "://" in location else location
        return Place("file", "", os.path.realpath(os.path.expanduser(path)))
    scheme, rest = location.split("://", 1)
    bucket, _, path = rest.partition("/")
    return Place(scheme.lower(), bucket, posixpath.normpath("/" + path).replace("//", "/"))


def project_roots(roots: Iterable[str], project: str) -> list[str]:
    """The roots with `{vlab}` and `{project}` filled in for `project` ("vlab/project")."""
    vlab, _, name = project.partition("/")
    return [root.replace("{vlab}", vlab).replace("{project}", name) for root in roots]


def is_under(location: str, roots: Iterable[str]) -> bool:
    """Whether `location` is one of `roots` or below one of them, once normalised."""
    place = normalise(location)
    for root in roots:
        allowed = normalise(root)
        if (place.scheme, place.bucket) != (allowed.scheme, allowed.bucket):
            continue
        base = allowed.path.rstrip("/")
        if place.path == allowed.path or place.path.startswith(base + "/"):
            return True
    return False


class RootSettings(Protocol):
    results_url: str
    results_roots: list[str] | None


def check_results_root(results: str | None, project: str, settings: RootSettings) -> None:
    """SpecError (naming `results`) unless a spec's `results` is under one of the roots
    `settings.results_roots` allows for `project` (None: under `results_url` only). No
    `results`: the service's own `results_url` is used, which is always allowed."""
    if results is None:
        return
    roots = settings.results_roots
    allowed = project_roots(roots if roots is not None else [settings.results_url], project)
    if not is_under(results, allowed):
        shown = ", ".join(allowed) or "none"
        raise SpecError.single(
            "results",
            f"{results!r} is not under a results location allowed for project {project} "
            f"(allowed: {shown}; setting results_roots)",
        )
