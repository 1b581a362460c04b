"""A real JWKS endpoint for tests: an HTTP server on a loopback port, in a daemon thread.

It stands in for Keycloak's `/protocol/openid-connect/certs`: the keys it serves can be
changed while it runs (key rotation), and it counts requests so tests can check the
verifier's caching and rate limit.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/jwks.json"


class JwksServer:
    """Serves `{"keys": keys}` at `url`.

    `fail_with` makes it answer with that HTTP status instead, `body` with those bytes (a
    broken issuer); `delay` (seconds) slows every answer down, to widen the window in which
    concurrent verifiers race for a fetch.
    """

    def __init__(self, keys: list[dict[str, Any]] | None = None):
        self.keys: list[dict[str, Any]] = list(keys or [])
        self.fail_with: int | None = None
        self.body: bytes | None = None
        self.delay = 0.0
        self._requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the JWKS server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    @property
    def requests(self) -> int:
        """How many times the JWKS was asked for so far."""
        with self._lock:
            return self._requests

    def start(self) -> JwksServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        # A short poll interval: stop() waits for the serving loop to notice the shutdown.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="jwks", daemon=True
        )
        self._server = server
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join()
            server.server_close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _respond(self) -> tuple[int, bytes]:
        with self._lock:
            self._requests += 1  # counted on arrival, so a test can see a fetch under way
        time.sleep(self.delay)
        if self.fail_with is not None:
            return self.fail_with, b'{"error": "unavailable"}'
        return 200, self.body or json.dumps({"keys": self.keys}).encode()


def _handler_for(owner: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = owner._respond() if self.path == PATH else (404, b"{}")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is not the place for access logs."""

    return Handler
