"""A small Nexus-Delta-compatible server for tests: an HTTP server on a loopback port, in a
daemon thread. It stands in for Blue Brain Nexus Delta, which cannot run here (it needs a
JVM, PostgreSQL, Elasticsearch or Blazegraph, and S3 credentials); it follows the endpoints
of Delta's API documentation (`resources-api.md`, `files-api.md`, `storages-api.md`) that the
client uses, with their status codes and error documents, and keeps everything in memory.

Resources, `/v1/resources/{org}/{project}/{schema}/{id}`:
- `PUT` creates (201; 409 `ResourceAlreadyExists` when the id exists in the project, as a
  resource or a file); `PUT …?rev={rev}` updates (409 `IncorrectRev` unless `rev` is the
  latest; an update that changes nothing keeps the revision);
- `GET` returns the payload with `_rev`, `_self` and the other metadata (404
  `ResourceNotFound`); `?rev=` or `?tag=` (not both: 400) give that revision (404
  `RevisionNotFound` / `TagNotFound`); `GET …/source` the original payload, the same way;
- `POST …/tags?rev={latest}` with `{"tag", "rev"}` tags revision `rev` (201). Tagging is an
  update: it adds a revision (same payload) and needs the latest `rev` (409 `IncorrectRev`);
  an existing tag of that name is moved, not refused; 404 `RevisionNotFound` for a revision
  that does not exist.

Storages, `GET /v1/storages/{org}/{project}/{id}` (404 `StorageNotFound`): those added with
`add_s3_storage`, whose bucket's objects are `objects[(bucket, key)]`.

Files, "Link using PUT": `PUT /v1/files/{org}/{project}/{id}?storage={storage}` with
`{"path", "filename", "mediaType"}` registers the object `path` of the storage's bucket as a
file (201 with `_bytes`, `_digest` {SHA-256 of the object}, `_filename`, `_mediaType`,
`_location`, `_storage`, `_rev`); 409 `ResourceAlreadyExists` when the id exists; 404
`StorageNotFound`; 400 when the object is missing or the storage is not an S3 one. `GET`
returns the file's metadata. `digest_pending` answers `_digest` without an algorithm, as
Delta does before it has computed it.

Errors are Delta's `{"@type", "reason"}` documents; requests without the expected bearer
token get 401. `created` counts creations (201) per (org, project, @id), resources and files.
`stop()` closes the port (connection refused), `start()` opens the same port again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Key = tuple[str, str, str]
"""(org, project, @id)."""
Answer = tuple[int, Any]
"""(HTTP status, JSON body)."""

UNCONSTRAINED = "https://bluebrain.github.io/nexus/schemas/unconstrained.json"
FILES_SCHEMA = "https://bluebrain.github.io/nexus/schemas/files.json"
STORAGES_SCHEMA = "https://bluebrain.github.io/nexus/schemas/storages.json"


class NexusServer:
    def __init__(self, token: str):
        self.token = token
        self.resources: dict[Key, dict[str, Any]] = {}
        """(org, project, @id) → {"rev": int, "source": latest payload, "history": {rev:
        payload}, "tags": {tag: rev}}."""
        self.files: dict[Key, dict[str, Any]] = {}
        """(org, project, @id) → the linked file's attributes (storage, path, filename, …)."""
        self.storages: dict[Key, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], bytes] = {}
        """The S3 objects the storages' buckets hold: (bucket, key) → bytes."""
        self.created: Counter[Key] = Counter()
        """Creations (201) per (org, project, @id)."""
        self.requests: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        """Answer every request with this status (e.g. 503) while set."""
        self.fail_times = 0
        """…or only the next `fail_times` requests."""
        self.digest_pending = False
        """Link files without a digest yet (`{"_value": ""}`)."""
        self._lock = threading.Lock()
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._port, "the server was never started"
        return f"http://127.0.0.1:{self._port}/v1"

    def start(self) -> NexusServer:
        """Listen (again: on the same port as before)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port: clients then get connection refused (the state is kept)."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join()
            server.server_close()

    def __enter__(self) -> NexusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def snapshot(self) -> dict[Key, dict[str, Any]]:
        """A copy of `resources`, safe to read while requests are being served."""
        with self._lock:
            return dict(self.resources)

    def add_s3_storage(self, org: str, project: str, storage_id: str, bucket: str) -> None:
        self.storages[(org, project, storage_id)] = {
            "@type": ["Storage", "S3Storage"],
            "bucket": bucket,
        }

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, path: str, auth: str | None, body: bytes) -> Answer:
        with self._lock:
            self.requests.append((method, path))
            if self.fail_with is not None or self.fail_times > 0:
                self.fail_times = max(self.fail_times - 1, 0)
                return self.fail_with or 503, _error("ServiceUnavailable", "try later")
            if auth != f"Bearer {self.token}":
                return 401, _error("AuthorizationFailed", "The supplied token is invalid.")
            parts = urlsplit(path)
            query = {name: values[0] for name, values in parse_qs(parts.query).items()}
            segments = parts.path.split("/")
            if len(segments) < 2 or segments[:2] != ["", "v1"]:
                return _no_endpoint()
            kind, rest = (segments[2] if len(segments) > 2 else ""), segments[3:]
            payload = json.loads(body) if body else None
            if kind == "resources":
                return self._resources(method, rest, query, payload)
            if kind == "files" and len(rest) == 3:
                return self._files(method, _key(rest), query, payload)
            if kind == "storages" and len(rest) == 3 and method == "GET":
                return self._get_storage(_key(rest))
            return _no_endpoint()

    def _resources(
        self, method: str, rest: list[str], query: dict[str, str], payload: Any
    ) -> Answer:
        if len(rest) not in (4, 5):
            return _no_endpoint()
        org, project, _schema, raw_id, *sub = rest
        key = (org, project, unquote(raw_id))
        action = (method, sub[0] if sub else "")
        if action == ("GET", ""):
            return self._get(key, query, with_metadata=True)
        if action == ("GET", "source"):
            return self._get(key, query, with_metadata=False)
        if action == ("PUT", ""):
            rev = query.get("rev")
            return self._put(key, payload, int(rev) if rev is not None else None)
        if action == ("POST", "tags"):
            return self._tag(key, payload, int(query.get("rev", 0)))
        return _no_endpoint()

    # ---------------------------------------------------------------- resources
    def _get(self, key: Key, query: dict[str, str], with_metadata: bool) -> Answer:
        stored = self.resources.get(key)
        if stored is None:
            return 404, _error("ResourceNotFound", f"Resource '{key[2]}' not found.")
        if "rev" in query and "tag" in query:
            return 400, _error("InvalidResourceId", "rev and tag cannot be both present.")
        rev, source = stored["rev"], stored["source"]
        if "tag" in query:
            if query["tag"] not in stored["tags"]:
                return 404, _error("TagNotFound", f"Tag requested '{query['tag']}' not found.")
            rev = stored["tags"][query["tag"]]
            source = stored["history"].get(rev)
        elif "rev" in query:
            rev = int(query["rev"])
            source = stored["history"].get(rev)
        if source is None:
            return 404, _error("RevisionNotFound", f"Revision '{rev}' not found.")
        if not with_metadata:
            return 200, source
        return 200, {**source, **self._metadata(key, rev)}

    def _put(self, key: Key, payload: dict[str, Any], rev: int | None) -> Answer:
        if payload.get("@id", key[2]) != key[2]:
            return 400, _error("UnexpectedId", "the payload @id differs from the path's")
        if any(name.startswith("_") for name in payload):
            return 400, _error("InvalidPayload", "fields starting with '_' are reserved")
        stored = self.resources.get(key)
        if rev is None:
            if stored is not None or key in self.files:
                return 409, _error("ResourceAlreadyExists", f"Resource '{key[2]}' exists.")
            self.resources[key] = {
                "rev": 1,
                "source": payload,
                "history": {1: payload},
                "tags": {},
            }
            self.created[key] += 1
            return 201, self._metadata(key)
        if stored is None:
            return 404, _error("ResourceNotFound", f"Resource '{key[2]}' not found.")
        if rev != stored["rev"]:
            return 409, _error("IncorrectRev", f"Provided rev '{rev}', latest '{stored['rev']}'.")
        if payload != stored["source"]:  # Delta ignores an update that changes nothing
            self._new_revision(stored, payload)
        return 200, self._metadata(key)

    def _tag(self, key: Key, body: dict[str, Any], rev: int) -> Answer:
        stored = self.resources.get(key)
        if stored is None:
            return 404, _error("ResourceNotFound", f"Resource '{key[2]}' not found.")
        if not isinstance(body, dict) or set(body) != {"tag", "rev"}:
            return 400, _error("MalformedRequest", 'the body is {"tag": …, "rev": …}')
        if rev != stored["rev"]:
            return 409, _error("IncorrectRev", f"Provided rev '{rev}', latest '{stored['rev']}'.")
        target = body["rev"]
        if not isinstance(target, int) or not 0 < target <= stored["rev"]:
            return 404, _error("RevisionNotFound", f"Revision '{target}' not found.")
        stored["tags"][body["tag"]] = target  # an existing tag of that name moves
        self._new_revision(stored, stored["source"])
        return 201, self._metadata(key)

    @staticmethod
    def _new_revision(stored: dict[str, Any], payload: dict[str, Any]) -> None:
        stored["rev"] += 1
        stored["source"] = payload
        stored.setdefault("history", {})[stored["rev"]] = payload

    def _metadata(self, key: Key, rev: int | None = None) -> dict[str, Any]:
        org, project, iri = key
        now = datetime.now(UTC).isoformat()
        return {
            "@id": iri,
            "_self": f"{self.url}/resources/{org}/{project}/_/{iri}",
            "_project": f"{org}/{project}",
            "_constrainedBy": UNCONSTRAINED,
            "_rev": self.resources[key]["rev"] if rev is None else rev,
            "_deprecated": False,
            "_createdAt": now,
            "_updatedAt": now,
        }

    # ------------------------------------------------------------ storages, files
    def _get_storage(self, key: Key) -> Answer:
        storage = self.storages.get(key)
        if storage is None:
            return 404, _error("StorageNotFound", f"Storage '{key[2]}' not found.")
        return 200, {
            "@id": key[2],
            **storage,
            "default": False,
            "_constrainedBy": STORAGES_SCHEMA,
            "_project": f"{key[0]}/{key[1]}",
            "_rev": 1,
            "_deprecated": False,
        }

    def _files(self, method: str, key: Key, query: dict[str, str], payload: Any) -> Answer:
        if method == "GET":
            stored = self.files.get(key)
            if stored is None:
                return 404, _error("FileNotFound", f"File '{key[2]}' not found.")
            return 200, self._file_metadata(key)
        if method == "PUT" and "rev" not in query:
            return self._link(key, query.get("storage"), payload)
        return _no_endpoint()

    def _link(self, key: Key, storage_id: str | None, link: Any) -> Answer:
        if storage_id is None:
            return 400, _error("MalformedRequest", "this stand-in needs ?storage=")
        storage = self.storages.get((key[0], key[1], storage_id))
        if storage is None:
            return 404, _error("StorageNotFound", f"Storage '{storage_id}' not found.")
        if "S3Storage" not in storage["@type"]:
            return 400, _error("UnsupportedOperation", "Linking needs an S3 storage.")
        if not isinstance(link, dict) or not isinstance(link.get("path"), str):
            return 400, _error("MalformedRequest", 'the body is {"path": …, …}')
        if key in self.files or key in self.resources:
            return 409, _error("ResourceAlreadyExists", f"Resource '{key[2]}' already exists.")
        data = self.objects.get((storage["bucket"], link["path"]))
        if data is None:
            reason = f"File could not be retrieved from expected path '{link['path']}'."
            return 400, _error("FileNotFound", reason)
        digest = "" if self.digest_pending else hashlib.sha256(data).hexdigest()
        self.files[key] = {
            "storage": storage_id,
            "path": link["path"],
            "filename": link.get("filename") or link["path"].rsplit("/", 1)[-1],
            "mediaType": link.get("mediaType") or "application/octet-stream",
            "bytes": len(data),
            "digest": digest,
        }
        self.created[key] += 1
        return 201, self._file_metadata(key)

    def _file_metadata(self, key: Key) -> dict[str, Any]:
        org, project, iri = key
        stored = self.files[key]
        digest = {"_algorithm": "SHA-256", "_value": stored["digest"]}
        bucket = self.storages[(org, project, stored["storage"])]["bucket"]
        return {
            "@id": iri,
            "@type": "File",
            "_self": f"{self.url}/files/{org}/{project}/{iri}",
            "_project": f"{org}/{project}",
            "_constrainedBy": FILES_SCHEMA,
            "_rev": 1,
            "_deprecated": False,
            "_bytes": stored["bytes"],
            "_digest": digest if stored["digest"] else {"_value": ""},
            "_filename": stored["filename"],
            "_mediaType": stored["mediaType"],
            "_location": f"s3://{bucket}/{stored['path']}",
            "_origin": "Storage",
            "_storage": {"@id": stored["storage"], "@type": "S3Storage", "_rev": 1},
        }


def _key(rest: list[str]) -> Key:
    return rest[0], rest[1], unquote(rest[2])


def _no_endpoint() -> Answer:
    return 404, _error("NotFound", "no such endpoint")


def _error(kind: str, reason: str) -> dict[str, str]:
    return {
        "@context": "https://bluebrain.github.io/nexus/contexts/error.json",
        "@type": kind,
        "reason": reason,
    }


def _handler_for(nexus: NexusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, document = nexus.handle(
                self.command, self.path, self.headers.get("Authorization"), body
            )
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/ld+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
