"""Putting one file into an object store durably: streamed, retried, then verified.

On S3 (s3fs) the file is read once, in parts of `block_size`: a file larger than one block
goes up as a multipart upload (up to `PARALLEL_PARTS` parts in flight, so memory stays at a
few blocks), every request carries the SHA-256 of its body (S3 rejects a damaged body), and
the whole file's SHA-256 is computed in the same pass. Afterwards the object's size and
checksum are read back (HEAD) and compared with the local ones; only then is the file stored.
Other fsspec stores get `put_file` with retries and a size check.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import posixpath
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.errors import ResultsError
from orchestrator.results.retry import TransientError, retrying

MiB = 1 << 20
UPLOAD_DEADLINE = 300.0
"""Seconds a task may spend storing its outputs (retries included) before it fails."""
MANIFEST_DEADLINE = 300.0
"""Seconds a manifest part is retried (in the background) before it is given up."""
MANIFEST_WAIT = 1.0
"""Seconds `append_manifest` waits for its part to be stored before it returns anyway."""
BLOCK_SIZE = 16 * MiB
"""Part size of multipart uploads; a larger file is always sent in parts."""
MIN_PART = 5 * MiB  # S3's smallest part (except the last)
MAX_PARTS = 10_000  # S3's largest number of parts
PARALLEL_PARTS = 4


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    """Hex SHA-256 of the whole content."""


def sha256_file(path: Path) -> Digests:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    return Digests(path.stat().st_size, digest.hexdigest())


def put(
    fs: Any,
    source: Path | bytes,
    rpath: str,
    *,
    deadline: float,
    block_size: int = BLOCK_SIZE,
    content_type: str | None = None,
) -> Digests:
    """Store `source` at `rpath` on `fs`, verified; retry transient errors until `deadline`."""
    if _is_s3(fs):
        return _S3Put(fs, source, rpath, deadline, block_size, content_type).run()
    return _generic_put(fs, source, rpath, deadline)


def _is_s3(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "s3" in protocols and hasattr(fs, "call_s3")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class _S3Put:
    def __init__(
        self,
        fs: Any,
        source: Path | bytes,
        rpath: str,
        deadline: float,
        block_size: int,
        content_type: str | None,
    ):
        self.fs = fs
        self.source = source
        self.bucket, self.key, _ = fs.split_path(rpath)
        self.rpath = rpath
        self.deadline = deadline
        self.size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
        # at least the block size, at least S3's minimum, and no more than 10,000 parts
        self.part_size = max(block_size, MIN_PART, -(-self.size // MAX_PARTS))
        self.extra = {"ContentType": content_type} if content_type else {}

    def call(self, method: str, **kwargs: Any) -> Any:
        return retrying(
            lambda: self.fs.call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs),
            deadline=self.deadline,
            what=f"{method} s3://{self.bucket}/{self.key}",
        )

    def run(self) -> Digests:
        def attempt() -> Digests:
            if self.size <= self.part_size:
                expected, digests = self._single()
            else:
                expected, digests = self._multipart()
            self._verify(expected)
            return digests

        # a verification mismatch or a lost multipart upload: send the whole file again
        return retrying(attempt, deadline=self.deadline, what=f"upload {self.rpath}")

    def _chunks(self) -> Iterator[bytes]:
        handle: BinaryIO
        if isinstance(self.source, bytes):
            handle = io.BytesIO(self.source)
        else:
            handle = open(self.source, "rb")  # noqa: SIM115 - closed below
        with handle:
            while chunk := handle.read(self.part_size):
                yield chunk

    def _single(self) -> tuple[str, Digests]:
        body = b"".join(self._chunks())
        raw = hashlib.sha256(body).digest()
        self.call(
            "put_object",
            Body=body,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64(raw),
            **self.extra,
        )
        return _b64(raw), Digests(len(body), raw.hex())

    def _multipart(self) -> tuple[str, Digests]:
        upload_id = self.call("create_multipart_upload", ChecksumAlgorithm="SHA256", **self.extra)[
            "UploadId"
        ]
        whole = hashlib.sha256()
        part_sums: list[bytes] = []
        size = 0
        futures: list[Future[dict[str, Any]]] = []
        try:
            with ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="s3-part") as pool:
                for number, chunk in enumerate(self._chunks(), start=1):
                    whole.update(chunk)
                    size += len(chunk)
                    raw = hashlib.sha256(chunk).digest()
                    part_sums.append(raw)
                    running = [f for f in futures if not f.done()]
                    if len(running) >= PARALLEL_PARTS:  # at most a few blocks in memory
                        wait(running, return_when=FIRST_COMPLETED)
                    futures.append(pool.submit(self._part, upload_id, number, chunk, raw))
                    _raise_first(futures)
                parts = [f.result() for f in futures]
            self.call(
                "complete_multipart_upload",
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException as exc:
            self._abort(upload_id)
            if _no_such_upload(exc):  # the store lost it: start again
                raise TransientError(f"multipart upload of {self.rpath} was lost") from exc
            raise
        composite = hashlib.sha256(b"".join(part_sums)).digest()
        return f"{_b64(composite)}-{len(part_sums)}", Digests(size, whole.hexdigest())

    def _part(self, upload_id: str, number: int, chunk: bytes, raw: bytes) -> dict[str, Any]:
        reply = self.call(
            "upload_part",
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64(raw),
        )
        return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumSHA256": _b64(raw)}

    def _abort(self, upload_id: str) -> None:
        # best effort: a lifecycle rule on the bucket cleans up what is left
        with contextlib.suppress(Exception):
            self.fs.call_s3(
                "abort_multipart_upload", Bucket=self.bucket, Key=self.key, UploadId=upload_id
            )

    def _verify(self, expected: str) -> None:
        head = self.call("head_object", ChecksumMode="ENABLED")
        length = head.get("ContentLength")
        if length != self.size:
            raise TransientError(f"{self.rpath}: stored size {length}, local size {self.size}")
        stored = head.get("ChecksumSHA256")
        if stored is None:  # a store without checksums: S3 itself always returns one
            raise ResultsError(f"{self.rpath}: the store returned no SHA-256 checksum")
        # AWS writes a multipart object's checksum as "<base64>-<parts>", some stores omit "-N"
        if stored.split("-")[0] != expected.split("-")[0]:
            raise TransientError(
                f"{self.rpath}: stored SHA-256 checksum {stored}, expected {expected}"
            )
        self.fs.invalidate_cache(self.rpath)


def _raise_first(futures: list[Future[dict[str, Any]]]) -> None:
    for future in futures:
        if future.done() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]


def _no_such_upload(exc: BaseException) -> bool:
    current: BaseException | None = exc
    while current is not None:
        if "NoSuchUpload" in str(current):
            return True
        current = current.__cause__
    return False


def _generic_put(fs: Any, source: Path | bytes, rpath: str, deadline: float) -> Digests:
    """Other stores (a cluster's files over SFTP): to a temporary name in the same folder,
    size checked, then renamed, so that a reader never sees half a file."""
    folder = posixpath.dirname(rpath)
    tmp = f"{rpath}.{uuid.uuid4().hex[:12]}.tmp"
    if isinstance(source, bytes):
        digests = Digests(len(source), hashlib.sha256(source).hexdigest())
        send = lambda: fs.pipe_file(tmp, source)  # noqa: E731
    else:
        digests = sha256_file(source)
        send = lambda: fs.put_file(str(source), tmp)  # noqa: E731

    def attempt() -> None:
        if folder:
            fs.makedirs(folder, exist_ok=True)
        send()
        fs.invalidate_cache(tmp)
        size = fs.info(tmp).get("size")
        if size != digests.size:
            raise TransientError(f"{rpath}: stored size {size}, local {digests.size}")
        _replace(fs, tmp, rpath)

    try:
        retrying(attempt, deadline=deadline, what=f"put {rpath}")
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm_file(tmp)
        raise
    fs.invalidate_cache(rpath)
    return digests


def _replace(fs: Any, source: str, target: str) -> None:
    """Rename over an existing file (SFTP's plain rename refuses to)."""
    try:
        fs.mv(source, target)
    except OSError:
        if not fs.exists(target):
            raise
        fs.rm_file(target)
        fs.mv(source, target)
