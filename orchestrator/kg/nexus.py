"""A `KnowledgeGraph` in Blue Brain Nexus Delta, through its v1 REST API.

Each item is one resource, unconstrained (schema `_`), whose `@id` is the item's IRI:
`PUT /v1/resources/{org}/{project}/_/{url-encoded @id}` creates it (201); when it already
exists (409), `GET` gives its `_rev` and `PUT …?rev={_rev}` replaces its payload (Delta keeps
the revision unchanged when nothing changed). Outputs are registered as resources that point
at their bytes (`schema:contentUrl`, digest, size): the bytes stay in S3 or on Lustre.

With `settings.storage` (an S3 storage of the project), an output in that storage's bucket
(learnt once per project: `GET /v1/storages/{org}/{project}/{storage}`) is also linked as a
Nexus file, before its resource is written: `PUT /v1/files/{org}/{project}/{file @id}
?storage={storage}` with `{"path": key, "filename", "mediaType"}` ("Link using PUT" in
Delta's files API; the object stays where it is). The file's `@id` is the output's IRI +
`#file`, so a retried registration meets 409 (`ResourceAlreadyExists`) and reads the file
instead of creating a second; either way, a SHA-256 `_digest` Delta gives must equal ours.
The output's resource then says `schema:distribution` → the file (only in what is sent
here: the embedded store has no files).

A campaign registered with its end (`ended_at` and `state`) has the revision just written
tagged with its state: `POST …/{@id}/tags?rev={latest}` with `{"tag": state, "rev": rev}`
(201; a tag is itself a new revision). Delta moves an existing tag of that name, so a
campaign restarted and ended again has its tag on the newest end. A retry is skipped when
the tagged revision's original payload (`GET …/source?tag=`) already is this document.

Transient failures (connection errors, timeouts, 429, 5xx) are retried a few times here,
then raise `KnowledgeGraphUnavailable`; the durable retry is the caller's (the store's
outbox). The token is sent only in the Authorization header and never appears in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator.kg.errors import KnowledgeGraphRejected, KnowledgeGraphUnavailable
from orchestrator.kg.jsonld import to_jsonld
from orchestrator.kg.model import CampaignProvenance, OutputEntity, Registrable
from orchestrator.kg.settings import NexusSettings

_CONFLICT_ROUNDS = 5
_MAX_RETRY_AFTER = 5.0
_S3 = "s3://"
_SHA256 = "SHA-256"
"""The name Delta gives SHA-256 in a file's `_digest._algorithm`."""


def file_iri(output: OutputEntity) -> str:
    """The `@id` of the Nexus file linked for an output (from its IRI: the same on a retry)."""
    return output.iri + "#file"


def s3_object(location: str) -> tuple[str, str] | None:
    """`s3://bucket/key` as (bucket, key); None for any other location."""
    if not location.startswith(_S3):
        return None
    bucket, _, key = location[len(_S3) :].partition("/")
    return (bucket, key) if bucket and key else None


def _rev_of(response: httpx.Response) -> int | None:
    """The `_rev` of a resource Delta answered with (None if it gave none)."""
    try:
        rev = response.json().get("_rev")
    except (ValueError, AttributeError):
        return None
    return rev if isinstance(rev, int) else None


def _segment(value: str) -> str:
    return quote(value, safe="")


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
        self._buckets: dict[tuple[str, str], str] = {}
        """(org, project) → the bucket of `settings.storage` there."""

    def __repr__(self) -> str:
        return f"NexusKnowledgeGraph({self.base_url!r})"

    def __enter__(self) -> NexusKnowledgeGraph:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def register(self, items: Sequence[Registrable]) -> None:
        """Create or update one resource per item, in order (an output on the storage's
        bucket linked as a file first; an ended campaign tagged after)."""
        for item in items:
            self._register(item)

    def resource_url(self, item: Registrable) -> str:
        """Where the item's resource lives in Delta."""
        org, project = self._where(item)
        return (
            f"{self.base_url}/resources/{_segment(org)}/{_segment(project)}/_/{_segment(item.iri)}"
        )

    def file_url(self, output: OutputEntity) -> str:
        """Where the file linked for an output lives in Delta."""
        org, project = self._where(output)
        return (
            f"{self.base_url}/files/{_segment(org)}/{_segment(project)}"
            f"/{_segment(file_iri(output))}"
        )

    def fetch(self, item: Registrable, tag: str | None = None) -> dict[str, Any] | None:
        """The item's resource as Delta returns it (with `_rev`, `_self`), at its revision
        tagged `tag` if given; None if absent (or not tagged so)."""
        return self._get_json(self.resource_url(item), {"tag": tag} if tag is not None else {})

    def fetch_file(self, output: OutputEntity) -> dict[str, Any] | None:
        """The metadata of the file linked for an output (`_digest`, `_bytes`, …), or None."""
        return self._get_json(self.file_url(output), {})

    # ---------------------------------------------------------------------- helpers
    def _where(self, item: Registrable) -> tuple[str, str]:
        """The Delta org and project an item goes to."""
        if self.settings.org is not None and self.settings.project is not None:
            return self.settings.org, self.settings.project
        org, project = item.project.split("/")
        return org, project

    def _register(self, item: Registrable) -> None:
        url = self.resource_url(item)
        document = to_jsonld(item)
        if isinstance(item, OutputEntity):
            linked = self._link_file(item)
            if linked is not None:
                document["schema:distribution"] = {"@id": linked}
        rev = self._upsert(url, document)
        if isinstance(item, CampaignProvenance) and item.ended_at and item.state:
            self._tag(url, document, item.state, rev)

    def _get_json(self, url: str, params: dict[str, str]) -> dict[str, Any] | None:
        response = self._send("GET", url, params=params)
        if response.status_code == 404:
            return None
        self._check(response, "GET", url)
        body: dict[str, Any] = response.json()
        return body

    def _upsert(self, url: str, document: dict[str, Any]) -> int | None:
        """Create or replace the resource; the revision that now holds `document`."""
        response = self._send("PUT", url, json=document)
        for _ in range(_CONFLICT_ROUNDS):
            if response.status_code != 409:  # created (201), or not at all
                self._check(response, "PUT", url)
                return _rev_of(response)
            # It exists (or another writer changed it since our GET): update its latest rev.
            rev = self._latest_rev(url, document["@id"])
            if rev is None:  # deleted in between: create it again
                response = self._send("PUT", url, json=document)
                continue
            response = self._send("PUT", url, params={"rev": rev}, json=document)
        raise KnowledgeGraphUnavailable(
            f"Nexus: {document['@id']} kept changing under us ({_CONFLICT_ROUNDS} conflicts)"
        )

    def _latest_rev(self, url: str, iri: str) -> int | None:
        """The resource's latest `_rev`; None when it does not exist."""
        current = self._send("GET", url)
        if current.status_code == 404:
            return None
        self._check(current, "GET", url)
        rev = _rev_of(current)
        if rev is None:
            raise KnowledgeGraphRejected(f"Nexus gave no _rev for {iri}")
        return rev

    # -------------------------------------------------------------------------- files
    def _link_file(self, output: OutputEntity) -> str | None:
        """Link an output in the storage's bucket as a Nexus file (once); its `@id`, or None
        when there is no storage or the output is elsewhere."""
        storage, found = self.settings.storage, s3_object(output.location)
        if storage is None or found is None:
            return None
        bucket, key = found
        if bucket != self._bucket(*self._where(output), storage):
            return None
        url = self.file_url(output)
        link = {
            "path": key,
            "filename": PurePosixPath(output.relpath).name,
            "mediaType": output.media_type,
        }
        response = self._send("PUT", url, params={"storage": storage}, json=link)
        if response.status_code == 409:  # ResourceAlreadyExists: linked by an earlier try
            response = self._send("GET", url)
            self._check(response, "GET", url)
        else:
            self._check(response, "PUT", url)
        self._check_digest(output, response.json())
        return file_iri(output)

    def _bucket(self, org: str, project: str, storage: str) -> str:
        """The bucket of the project's S3 storage `storage` (asked once per project)."""
        known = self._buckets.get((org, project))
        if known is not None:
            return known
        url = f"{self.base_url}/storages/{_segment(org)}/{_segment(project)}/{_segment(storage)}"
        body = self._get_json(url, {})
        if body is None:
            raise KnowledgeGraphRejected(
                f"Nexus has no storage {storage!r} in {org}/{project}", status=404
            )
        types = body.get("@type")
        types = [types] if isinstance(types, str) else types if isinstance(types, list) else []
        bucket = body.get("bucket")
        if not any(str(t).endswith("S3Storage") for t in types) or not isinstance(bucket, str):
            raise KnowledgeGraphRejected(
                f"Nexus storage {storage!r} in {org}/{project} is not an S3 storage with a "
                f"bucket (@type {body.get('@type')!r})"
            )
        self._buckets[(org, project)] = bucket
        return bucket

    @staticmethod
    def _check_digest(output: OutputEntity, file: dict[str, Any]) -> None:
        """A SHA-256 digest Delta computed for the file must be ours (none yet: nothing to
        compare)."""
        digest = file.get("_digest")
        if not isinstance(digest, dict) or digest.get("_algorithm") != _SHA256:
            return
        theirs = digest.get("_value")
        algorithm, _, ours = output.digest.partition(":")
        if not theirs or algorithm.lower().replace("-", "") != "sha256":
            return
        if str(theirs).lower() != ours.lower():
            raise KnowledgeGraphRejected(
                f"Nexus file {file_iri(output)} for {output.location} has SHA-256 {theirs}, "
                f"but the output's is {ours}"
            )

    # --------------------------------------------------------------------------- tags
    def _tag(self, url: str, document: dict[str, Any], tag: str, rev: int | None) -> None:
        """Tag revision `rev` (which holds `document`) `tag`, unless that tag already
        points at this very document (a retried registration)."""
        if rev is None:
            raise KnowledgeGraphRejected(f"Nexus gave no _rev for {document['@id']}")
        if self._tagged(url, document, tag):
            return
        latest = rev
        tags_url = f"{url}/tags"
        for _ in range(_CONFLICT_ROUNDS):
            response = self._send(
                "POST", tags_url, params={"rev": latest}, json={"tag": tag, "rev": rev}
            )
            if response.status_code != 409:  # 201; a tag of that name moved, not refused
                self._check(response, "POST", tags_url)
                return
            latest = self._latest_rev(url, document["@id"]) or latest  # IncorrectRev
        raise KnowledgeGraphUnavailable(
            f"Nexus: {document['@id']} kept changing while tagging ({_CONFLICT_ROUNDS} conflicts)"
        )

    def _tagged(self, url: str, document: dict[str, Any], tag: str) -> bool:
        """Whether the revision tagged `tag` was written from `document`."""
        source = self._get_json(f"{url}/source", {"tag": tag})
        return source == document

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
