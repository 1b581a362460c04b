"""A small Nexus-Delta-compatible server for tests: an HTTP server on a loopback port, in a
daemon thread. It stands in for Blue Brain Nexus Delta, which cannot run here.

It implements the documented resource endpoints the client uses, with their semantics:
`PUT /v1/resources/{org}/{project}/{schema}/{id}` creates (201; 409 `ResourceAlreadyExists`
when the id exists), `PUT …?rev={rev}` updates (409 `IncorrectRev` unless `rev` is the
latest; an update that changes nothing keeps the revision), `GET` returns the payload with
`_rev`, `_self` and the other metadata (404 `ResourceNotFound`). Errors are Delta's
`{"@type", "reason"}` documents. Requests without the expected bearer token get 401.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/v1/resources/"


class NexusServer:
    def __init__(self, token: str):
        self.token = token
        self.resources: dict[tuple[str, str, str], dict[str, Any]] = {}
        """(org, project, @id) → {"rev": int, "source": payload}."""
        self.requests: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        """Answer every request with this status (e.g. 503) while set."""
        self.fail_times = 0
        """…or only the next `fail_times` requests."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> NexusServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join()
            server.server_close()

    def __enter__(self) -> NexusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ semantics
    def handle(self, method: str, path: str, auth: str | None, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            if self.fail_with is not None or self.fail_times > 0:
                self.fail_times = max(self.fail_times - 1, 0)
                return self.fail_with or 503, _error("ServiceUnavailable", "try later")
            if auth != f"Bearer {self.token}":
                return 401, _error("AuthorizationFailed", "The supplied token is invalid.")
            parts = urlsplit(path)
            segments = parts.path[len(PREFIX) :].split("/")
            if not parts.path.startswith(PREFIX) or len(segments) != 4:
                return 404, _error("NotFound", "no such endpoint")
            org, project, _schema, raw_id = segments
            key = (org, project, unquote(raw_id))
            rev = parse_qs(parts.query).get("rev")
            if method == "GET":
                return self._get(key)
            if method == "PUT":
                return self._put(key, json.loads(body), int(rev[0]) if rev else None)
            return 405, _error("MethodNotAllowed", method)

    def _get(self, key: tuple[str, str, str]) -> tuple[int, Any]:
        stored = self.resources.get(key)
        if stored is None:
            return 404, _error("ResourceNotFound", f"Resource '{key[2]}' not found.")
        return 200, {**stored["source"], **self._metadata(key)}

    def _put(
        self, key: tuple[str, str, str], payload: dict[str, Any], rev: int | None
    ) -> tuple[int, Any]:
        if payload.get("@id", key[2]) != key[2]:
            return 400, _error("UnexpectedId", "the payload @id differs from the path's")
        if any(name.startswith("_") for name in payload):
            return 400, _error("InvalidPayload", "fields starting with '_' are reserved")
        stored = self.resources.get(key)
        if rev is None:
            if stored is not None:
                return 409, _error("ResourceAlreadyExists", f"Resource '{key[2]}' exists.")
            self.resources[key] = {"rev": 1, "source": payload}
            return 201, self._metadata(key)
        if stored is None:
            return 404, _error("ResourceNotFound", f"Resource '{key[2]}' not found.")
        if rev != stored["rev"]:
            return 409, _error("IncorrectRev", f"Provided rev '{rev}', latest '{stored['rev']}'.")
        if payload != stored["source"]:  # Delta ignores an update that changes nothing
            self.resources[key] = {"rev": rev + 1, "source": payload}
        return 200, self._metadata(key)

    def _metadata(self, key: tuple[str, str, str]) -> dict[str, Any]:
        org, project, iri = key
        now = datetime.now(UTC).isoformat()
        return {
            "@id": iri,
            "_self": f"{self.url}/resources/{org}/{project}/_/{iri}",
            "_project": f"{org}/{project}",
            "_constrainedBy": "https://bluebrain.github.io/nexus/schemas/unconstrained.json",
            "_rev": self.resources[key]["rev"],
            "_deprecated": False,
            "_createdAt": now,
            "_updatedAt": now,
        }


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

        do_GET = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
