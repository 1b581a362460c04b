"""A campaign's results location: a local folder, or an object store through fsspec."""

from __future__ import annotations

import functools
import json
import mimetypes
import os
import posixpath
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from orchestrator.errors import ResultsError
from orchestrator.results import on_the_cluster, upload
from orchestrator.results.parts import PartWriter
from orchestrator.results.retry import retrying

_MEDIA_TYPES = {".log": "text/plain", ".jsonl": "application/jsonl", ".npy": "application/x-npy"}
_SKIPPED_SUFFIX = ".tmp"  # half-written files (write_bytes' temporary names)
_RANGED_CAT = frozenset({"file", "local", "s3", "s3a"})
"""Protocols whose `cat_file` reads only the range asked for (sshfs reads the whole file)."""
CLUSTER_SCHEME = "cluster://"
"""`cluster:///lustre/…`: a path on the project's cluster (its Lustre), written by the tasks."""


@dataclass(frozen=True)
class StoredFile:
    """One output of a task, where it is kept and what it holds."""

    path: str
    """Relative to the task's output folder (posix separators)."""
    url: str
    size: int
    digest: str
    """`sha256:<hex>`."""
    media_type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def media_type(name: str) -> str:
    suffix = posixpath.splitext(name)[1].lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def campaign_results_url(results: str, name: str, campaign_id: str) -> str:
    """The campaign's own folder under the spec's `results` (relative paths from the cwd)."""
    if "://" not in results:
        results = os.path.abspath(os.path.expanduser(results))
    return posixpath.join(results.rstrip("/"), f"{name}-{campaign_id}")


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for `url`. S3: credentials and endpoint the boto3 way.

    The endpoint (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`) is passed explicitly, so that
    fsspec's cache of filesystems tells endpoints apart; botocore's own retries are kept short
    because ours (with a deadline) come on top.
    """
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol not in ("s3", "s3a"):
        return {}
    options: dict[str, Any] = {
        "config_kwargs": {
            "connect_timeout": 10,
            "read_timeout": 120,
            "retries": {"mode": "standard", "max_attempts": 2},
        }
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


def endpoint_of(url: str) -> str:
    """Where `url`'s store is reached, for error messages (never credentials)."""
    if cluster_path(url) is not None:
        return on_the_cluster.describe()
    options = storage_options(url)
    endpoint = options.get("client_kwargs", {}).get("endpoint_url")
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"  # no user:password@ if one was given
    if options:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return f"AWS S3 ({region or 'default region'})"
    return url.split("://", 1)[0]


def filesystem(url: str, *, on_cluster: bool = False) -> tuple[Any, str]:
    """The fsspec file system and path for `url`. A cluster path (`cluster:///lustre/…`) is
    local where the tasks run (`on_cluster`), and reached through the cluster from here."""
    path = cluster_path(url)
    if path is not None:
        return (LocalFileSystem() if on_cluster else on_the_cluster.filesystem()), path
    try:
        return fsspec.core.url_to_fs(url, **storage_options(url))
    except (ImportError, ValueError) as exc:
        raise ResultsError(f"cannot use results location {url!r}: {exc}") from exc


class ResultsLocation:
    """Where a campaign's results are kept. `on_cluster`: seen from a task on the project's
    cluster, where a cluster path is a local folder (the tasks write it themselves)."""

    def __init__(self, base_url: str, *, on_cluster: bool = False):
        self.base_url = base_url.rstrip("/")
        self.cluster_path = cluster_path(self.base_url)
        self.fs, self.root = filesystem(self.base_url, on_cluster=on_cluster)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.endpoint = endpoint_of(self.base_url)  # the one `fs` was made for
        self._parts = PartWriter(self._put_part)

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

    # ----------------------------------------------------------------- files
    def write_bytes(self, relpath: str, data: bytes, *, deadline: float | None = None) -> str:
        """Write durably: to a temporary name, then rename (local) or a verified put (remote)."""
        target = self.path(relpath)
        try:
            if self.is_local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                tmp = f"{target}.{uuid.uuid4().hex}{_SKIPPED_SUFFIX}"
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            else:
                self._put(data, relpath, deadline)
        except OSError as exc:
            raise ResultsError(f"cannot write {self.url(relpath)}: {exc}") from exc
        return self.url(relpath)

    def read_bytes(self, relpath: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(relpath)))
        except (OSError, FileNotFoundError) as exc:
            raise ResultsError(f"cannot read {self.url(relpath)}: {exc}") from exc

    def read_tail(self, relpath: str, size: int) -> bytes:
        """The last `size` bytes of a file (all of it if shorter), reading only those bytes:
        a ranged read where `cat_file` honours ranges (local, S3), else open, seek and read."""
        if size <= 0:
            return b""
        path = self.path(relpath)
        try:
            if _protocols(self.fs) & _RANGED_CAT:
                return bytes(self.fs.cat_file(path, start=-size))
            with self.fs.open(path, "rb") as handle:
                handle.seek(max(0, int(self.fs.size(path)) - size))
                return bytes(handle.read(size))
        except (OSError, FileNotFoundError) as exc:
            raise ResultsError(f"cannot read {self.url(relpath)}: {exc}") from exc

    def store_dir(
        self,
        local: Path,
        relpath: str,
        *,
        deadline: float | None = None,
        block_size: int | None = None,
        only: Iterable[str] | None = None,
    ) -> list[StoredFile]:
        """The files of a task's folder, stored under `relpath` and described.

        Local results: the folder *is* `relpath`; its files are only described (hashed).
        Remote results: every file is uploaded (verified) before this returns; a file that
        cannot be stored within `deadline` seconds (default `upload.UPLOAD_DEADLINE`, for all
        the files together) raises ResultsError. `only` limits it to those names.
        """
        names = sorted(only) if only is not None else _files_under(local)
        seconds = upload.UPLOAD_DEADLINE if deadline is None else deadline
        ends = time.monotonic() + seconds
        stored = []
        for name in names:
            source = local / name
            if not source.is_file():
                continue
            target = f"{relpath}/{name}"
            if self.is_local:
                digests = upload.sha256_file(source)
            else:
                digests = self._put(source, target, seconds, ends=ends, block_size=block_size)
            stored.append(
                StoredFile(
                    path=name,
                    url=self.url(target),
                    size=digests.size,
                    digest=f"sha256:{digests.sha256}",
                    media_type=media_type(name),
                )
            )
        return stored

    def _put(
        self,
        source: Path | bytes,
        relpath: str,
        deadline: float | None,
        *,
        ends: float | None = None,
        block_size: int | None = None,
    ) -> upload.Digests:
        seconds = upload.UPLOAD_DEADLINE if deadline is None else deadline
        try:
            return upload.put(
                self.fs,
                source,
                self.path(relpath),
                deadline=time.monotonic() + seconds if ends is None else ends,
                block_size=upload.BLOCK_SIZE if block_size is None else block_size,
                content_type=media_type(relpath),
            )
        except Exception as exc:
            raise ResultsError(
                f"could not store {self.url(relpath)} at {self.endpoint} "
                f"(gave up after {seconds:g}s): {_short(exc)}"
            ) from exc

    # -------------------------------------------------------------- manifest
    def append_manifest(self, entries: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(e, default=str) + "\n" for e in entries)
        if self.is_local:
            if not lines:
                return
            path = Path(self.path("manifest.jsonl"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
            return
        if lines:  # object stores cannot append: one part per flush, sent in order
            self._parts.add(lines.encode())
            # normally stored by the time this returns; during an outage the caller (the
            # engine's recorder) goes on, and the part follows when the store is back
            self._parts.flush(upload.MANIFEST_WAIT)

    def flush_manifest(self, timeout: float | None = None) -> bool:
        """Wait until the manifest lines handed over so far are stored (False on timeout)."""
        return True if self.is_local else self._parts.flush(timeout)

    def manifest_given_up(self) -> list[str]:
        """Why manifest parts handed over were given up (object stores), and forget them."""
        if self.is_local:
            return []
        lost, self._parts.given_up = self._parts.given_up, []
        return lost

    def _put_part(self, data: bytes, name: str, ends: float) -> None:
        self._put(data, name, upload.MANIFEST_DEADLINE, ends=ends)

    def read_manifest(self) -> list[dict[str, Any]]:
        """Every manifest line so far (a task may appear more than once; the last one wins)."""
        return list(self.iter_manifest())

    def iter_manifest(self) -> Iterator[dict[str, Any]]:
        """The manifest's lines in order, one at a time: memory does not grow with its length
        (a file read line by line, an object store's parts one part at a time)."""
        try:
            for text in self._manifest_texts():
                for line in text:
                    if line.strip():
                        yield json.loads(line)
        except ResultsError:
            raise
        except Exception as exc:  # no credentials, no such bucket, the cluster unreachable
            raise ResultsError(
                f"cannot read the manifest of {self.base_url} at {self.endpoint}: {_short(exc)}"
            ) from exc

    def _manifest_texts(self) -> Iterator[Iterable[str]]:
        if self.is_local:
            path = Path(self.path("manifest.jsonl"))
            if path.exists():
                with path.open(encoding="utf-8") as handle:
                    yield handle
            return
        folder = self.path("manifest")
        self.fs.invalidate_cache(folder)  # a listing cached earlier would hide new parts
        deadline = time.monotonic() + upload.MANIFEST_DEADLINE
        parts = sorted(
            retrying(
                lambda: self.fs.glob(f"{folder}/part-*.jsonl"),
                deadline=deadline,
                what=f"list {folder}",
            )
        )
        for part in parts:
            data: bytes = retrying(
                functools.partial(self.fs.cat_file, part), deadline=deadline, what=f"read {part}"
            )
            yield data.decode().splitlines()


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def _files_under(folder: Path) -> list[str]:
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.endswith(_SKIPPED_SUFFIX)
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def cluster_path(url: str) -> str | None:
    """The absolute path of a cluster URL (`cluster:///lustre/x` → `/lustre/x`), else None."""
    if not url.startswith(CLUSTER_SCHEME):
        return None
    path = url[len(CLUSTER_SCHEME) :]
    if not path.startswith("/") or "\x00" in path:
        raise ResultsError(
            f"{url!r}: a cluster path is absolute, e.g. {CLUSTER_SCHEME}/lustre/scratch/results"
        )
    return posixpath.normpath(path)


def open_url(url: str) -> bytes:
    """Read a whole file given by URL (a stored result)."""
    try:
        fs, path = filesystem(url)
        return bytes(fs.cat_file(path))
    except (OSError, FileNotFoundError) as exc:
        raise ResultsError(f"cannot read {url}: {exc}") from exc
