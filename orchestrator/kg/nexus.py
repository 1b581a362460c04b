"""A `KnowledgeGraph` in Blue Brain Nexus Delta, through its v1 REST API.

Each item is one resource, unconstrained (schema `_`), whose `@id` is the item's IRI:
`PUT /v1/resources/{org}/{project}/_/{url-encoded @id}` creates it (201); when it already
exists (409), `GET` gives its `_rev` and `PUT …?rev={_rev}` replaces its payload (Delta keeps
the revision unchanged when nothing changed). Outputs are registered as resources that point
at their bytes (`schema:contentUrl`, digest, size): the bytes stay in S3 or on Lustre.

Transient failures (connection errors, timeouts, 429, 5xx) are retried a few times here,
then raise `KnowledgeGraphUnavailable`; the durable retry is the caller's (the store's
outbox). The token is sent only in the Authorization header and never appears in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator.kg.errors import KnowledgeGraphRejected, KnowledgeGraphUnavailable
from orchestrator.kg.model import Registrable
from orchestrator.kg.prov import to_jsonld
from orchestrator.kg.settings import NexusSettings

_CONFLICT_ROUNDS = 5
_MAX_RETRY_AFTER = 5.0


class _Bearer(httpx.Auth):
    """Adds `Authorization: Bearer …` from a provider, so a refreshed token is picked up."""

    def __init__(self, token: Callable[[], str]):
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        yield request


def _reason(response: httpx.Response) -> str:
    """Delta's error `reason` (or the start of the body), for messages."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("reason"), str):
        return body["reason"]
    return response.reason_phrase


class NexusKnowledgeGraph:
    """Registers items as JSON-LD resources in a Nexus Delta project.

    `token` (a callable returning a bearer token) overrides `settings.token`, e.g. to use a
    service account's refreshed token; `transport` is passed to httpx.
    """

    def __init__(
        self,
        settings: NexusSettings,
        *,
        token: Callable[[], str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        if not settings.base_url:
            raise ValueError("Nexus needs a base_url (e.g. https://nexus.example.org/v1)")
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        secret = settings.token
        if token is None and secret is not None:
            token = secret.get_secret_value
        self._token = token
        self._client = httpx.Client(
            timeout=settings.timeout,
            auth=_Bearer(token) if token is not None else None,
            headers={"Accept": "application/ld+json, application/json"},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"NexusKnowledgeGraph({self.base_url!r})"

    def __enter__(self) -> NexusKnowledgeGraph:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def register(self, items: Sequence[Registrable]) -> None:
        """Create or update one resource per item, in order."""
        for item in items:
            self._upsert(self.resource_url(item), to_jsonld(item))

    def resource_url(self, item: Registrable) -> str:
        """Where the item's resource lives in Delta."""
        if self.settings.org is not None and self.settings.project is not None:
            org, project = self.settings.org, self.settings.project
        else:
            org, project = item.project.split("/")
        return (
            f"{self.base_url}/resources/{quote(org, safe='')}/{quote(project, safe='')}"
            f"/_/{quote(item.iri, safe='')}"
        )

    def fetch(self, item: Registrable) -> dict[str, Any] | None:
        """The item's resource as Delta returns it (with `_rev`, `_self`), None if absent."""
        response = self._send("GET", self.resource_url(item))
        if response.status_code == 404:
            return None
        self._check(response, "GET", self.resource_url(item))
        body: dict[str, Any] = response.json()
        return body

    # ---------------------------------------------------------------------- helpers
    def _upsert(self, url: str, document: dict[str, Any]) -> None:
        response = self._send("PUT", url, json=document)
        for _ in range(_CONFLICT_ROUNDS):
            if response.status_code != 409:  # created (201), or not at all
                self._check(response, "PUT", url)
                return
            # It exists (or another writer changed it since our GET): update its latest rev.
            current = self._send("GET", url)
            if current.status_code == 404:  # deleted in between: create it again
                response = self._send("PUT", url, json=document)
                continue
            self._check(current, "GET", url)
            rev = current.json().get("_rev")
            if not isinstance(rev, int):
                raise KnowledgeGraphRejected(f"Nexus gave no _rev for {document['@id']}")
            response = self._send("PUT", url, params={"rev": rev}, json=document)
        raise KnowledgeGraphUnavailable(
            f"Nexus: {document['@id']} kept changing under us ({_CONFLICT_ROUNDS} conflicts)"
        )

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried quickly on transient failures."""
        problem = ""
        for attempt in range(self.settings.attempts):
            delay = self.settings.backoff * 2**attempt
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'}"
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem = f"{response.status_code} {self._scrub(_reason(response))}"
                delay = max(delay, self._retry_after(response))
            if attempt + 1 < self.settings.attempts:
                time.sleep(delay)
        raise KnowledgeGraphUnavailable(
            f"Nexus at {self.base_url} unavailable: {method} gave {problem} "
            f"(after {self.settings.attempts} tries)"
        )

    def _check(self, response: httpx.Response, method: str, url: str) -> None:
        """Success passes; any other answer is a rejection that retrying will not fix."""
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = self._scrub(_reason(response))
        if status == 401:
            message = f"Nexus rejected the token (401 Unauthorized): {reason}"
        elif status == 403:
            message = f"Nexus forbids {method} {url} for this token (403): {reason}"
        else:
            message = f"Nexus refused {method} {url}: {status} {reason}"
        raise KnowledgeGraphRejected(message, status=status)

    def _scrub(self, text: str) -> str:
        """Never let the token into a message, even if a server echoes it."""
        if self._token is not None:
            secret = self._token()
            if secret:
                text = text.replace(secret, "***")
        return text

    @staticmethod
    def _retry_after(response: httpx.Response) -> float:
        try:
            return min(float(response.headers.get("Retry-After", 0)), _MAX_RETRY_AFTER)
        except ValueError:
            return 0.0
