"""A campaign's results location, through fsspec: a local folder here, any fsspec URL later.

Layout under the campaign's base URL:
    {step}/{point:06d}/...   one folder per task of a foreach step (files the task wrote,
    {step}/...               result.pkl / result.json for values too big for the store)
    manifest.jsonl           one line per finished task: point, parameters, state, result
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from orchestrator.errors import ResultsError


def campaign_results_url(results: str, name: str, campaign_id: str) -> str:
    """The campaign's own folder under the spec's `results` (relative paths from the cwd)."""
    if "://" not in results:
        results = os.path.abspath(os.path.expanduser(results))
    return posixpath.join(results.rstrip("/"), f"{name}-{campaign_id}")


class ResultsLocation:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.base_url)
        except (ImportError, ValueError) as exc:
            raise ResultsError(f"cannot use results location {base_url!r}: {exc}") from exc
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def task_prefix(self, step: str, point: int | None) -> str:
        return step if point is None else f"{step}/{point:06d}"

    def path(self, relpath: str) -> str:
        return posixpath.join(self.root, relpath)

    def url(self, relpath: str) -> str:
        return posixpath.join(self.base_url, relpath)

    def local_dir(self, relpath: str) -> Path:
        if not self.is_local:
            raise ResultsError(f"{self.base_url} is not a local folder")
        path = Path(self.path(relpath))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Write durably: to a temporary name, then rename (local) or a single put (remote)."""
        target = self.path(relpath)
        try:
            if self.is_local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                tmp = f"{target}.{uuid.uuid4().hex}.tmp"
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            else:
                self.fs.pipe_file(target, data)
        except OSError as exc:
            raise ResultsError(f"cannot write {self.url(relpath)}: {exc}") from exc
        return self.url(relpath)

    def read_bytes(self, relpath: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(relpath)))
        except (OSError, FileNotFoundError) as exc:
            raise ResultsError(f"cannot read {self.url(relpath)}: {exc}") from exc

    def upload_dir(self, local: Path, relpath: str) -> None:
        """Copy a task's local output folder to the location (remote results only)."""
        if any(local.iterdir()):
            self.fs.put(str(local) + "/", self.path(relpath), recursive=True)

    def append_manifest(self, entries: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(e, default=str) + "\n" for e in entries)
        if not lines:
            return
        if self.is_local:
            path = Path(self.path("manifest.jsonl"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        else:  # object stores cannot append: one part per flush
            self.fs.pipe_file(self.path(f"manifest/part-{uuid.uuid4().hex}.jsonl"), lines.encode())

    def read_manifest(self) -> list[dict[str, Any]]:
        """Every manifest line so far (a task may appear more than once; the last one wins)."""
        texts: list[str] = []
        if self.is_local:
            path = Path(self.path("manifest.jsonl"))
            if path.exists():
                texts.append(path.read_text(encoding="utf-8"))
        else:
            for part in sorted(self.fs.glob(self.path("manifest/part-*.jsonl"))):
                texts.append(self.fs.cat_file(part).decode())
        return [json.loads(line) for text in texts for line in text.splitlines() if line]


def open_url(url: str) -> bytes:
    """Read a whole file given by URL (a stored result)."""
    try:
        with fsspec.open(url, "rb") as handle:
            return bytes(handle.read())
    except (OSError, FileNotFoundError) as exc:
        raise ResultsError(f"cannot read {url}: {exc}") from exc
