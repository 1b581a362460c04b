"""The `Client` of one project on one server: every call goes through `_request`, which
retries only what is safe to send again (idempotent calls on transport errors and 502/503/504;
any call whose connection could not be made); paged answers are followed cursor by cursor,
and a followed event stream resumes after the last event it received.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from orchestrator.client._progress import _print_progress
from orchestrator.client._stream import _EVENT_SHAPE, _server_sent_events
from orchestrator.client._urls import _safe_url, _segment
from orchestrator.client.errors import ClientError, WaitTimeout
from orchestrator.errors import SettingsError
from orchestrator.spec import CampaignSpec, read_document
from orchestrator.states import CAMPAIGN_TERMINAL

ATTEMPTS = 3
BACKOFF_SECONDS = 0.25  # doubled after each failed attempt
RETRY_STATUSES = frozenset({502, 503, 504})
LIST_PAGE, TASK_PAGE, EVENT_PAGE = 100, 500, 1000
STREAM_READ_TIMEOUT = 60.0  # the server sends a keep-alive comment every 15 s
ENV_URL, ENV_TOKEN, ENV_PROJECT = "ORCHESTRATOR_URL", "ORCHESTRATOR_TOKEN", "ORCHESTRATOR_PROJECT"
_PROJECT = re.compile(r"^[A-Za-z0-9_-]{1,100}/[A-Za-z0-9_-]{1,100}$")


class Client:
    """The campaigns of one project on one server. Use as a context manager, or `close()`."""

    def __init__(
        self,
        url: str,
        token: str,
        project: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, not {url!r}")
        if not _PROJECT.match(project):
            raise ValueError(
                f"project must be VLAB/PROJECT (letters, digits, '-', '_'): {project!r}"
            )
        if not token:
            raise ValueError("a bearer token is required")
        self.url = url.rstrip("/")
        self.project = project
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "orchestrator-client/1",
            },
            timeout=timeout,
            transport=transport,
        )
        self._base = f"/v1/projects/{project}"

    @classmethod
    def from_settings(cls) -> Client:
        """From ORCHESTRATOR_URL, ORCHESTRATOR_TOKEN and ORCHESTRATOR_PROJECT."""
        values = {
            name: os.environ.get(name, "").strip() for name in (ENV_URL, ENV_TOKEN, ENV_PROJECT)
        }
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise SettingsError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                f"the client needs {ENV_URL} (the server), "
                f"{ENV_TOKEN} (a bearer token; `orchestrator token --project VLAB/PROJECT` "
                f"makes one for the development issuer) and {ENV_PROJECT} (VLAB/PROJECT)"
            )
        try:
            return cls(values[ENV_URL], values[ENV_TOKEN], values[ENV_PROJECT])
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def __repr__(self) -> str:
        return f"Client(url={_safe_url(self.url)!r}, project={self.project!r}, token=***)"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ campaigns
    def submit(
        self,
        spec: CampaignSpec | Mapping[str, Any] | str | Path,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Submit a campaign (a file path, a document, or a CampaignSpec); its status.

        The server validates the spec (its callables must be importable there). The key makes
        a retried submit return the first campaign instead of creating a second one.
        """
        key = idempotency_key or str(uuid.uuid4())
        return self._json(
            "POST", "/campaigns", retry=True, json=_document(spec), headers={"Idempotency-Key": key}
        )

    def status(self, campaign_id: str) -> dict[str, Any]:
        return self._json("GET", f"/campaigns/{_segment(campaign_id)}")

    def list(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50
    ) -> builtins.list[dict[str, Any]]:
        """Campaigns, newest first, following the cursor up to `limit`."""
        found: builtins.list[dict[str, Any]] = []
        cursor: str | None = None
        while len(found) < limit:
            params = _params(
                state=state, name=name, cursor=cursor, limit=min(limit - len(found), LIST_PAGE)
            )
            page = self._json("GET", "/campaigns", params=params)
            found += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return found[:limit]

    def cancel(
        self, campaign_id: str, *, step: str | None = None, point: int | None = None
    ) -> dict[str, Any]:
        """Cancel the campaign, or only a step (and what needs it) or a point."""
        return self._json(
            "POST",
            f"/campaigns/{_segment(campaign_id)}/cancel",
            json=_params(step=step, point=point),
        )

    def extend(
        self,
        campaign_id: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        sweep: str = "product",
        points: builtins.list[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Add points (a sub-grid of `parameters`, or explicit `points`); the status."""
        body: dict[str, Any] = {"sweep": sweep}
        if parameters is not None:
            body["parameters"] = dict(parameters)
        if points is not None:
            body["points"] = [dict(p) for p in points]
        return self._json("POST", f"/campaigns/{_segment(campaign_id)}/extend", json=body)

    def throttle(self, campaign_id: str, limit: int, *, step: str | None = None) -> dict[str, Any]:
        """At most `limit` points in flight, or (`step`, a batch step) `limit` tasks of each
        of its job arrays at once; the status."""
        body = {"limit": limit, "step": step}
        return self._json("POST", f"/campaigns/{_segment(campaign_id)}/throttle", json=body)

    def restart(self, campaign_id: str) -> dict[str, Any]:
        return self._json("POST", f"/campaigns/{_segment(campaign_id)}/restart")

    def delete(self, campaign_id: str) -> None:
        self._request("DELETE", f"/campaigns/{_segment(campaign_id)}")

    def tasks(
        self, campaign_id: str, *, step: str | None = None, state: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every task that was queued at least once (all pages, fetched as iterated)."""
        cursor: str | None = None
        while True:
            params = _params(step=step, state=state, cursor=cursor, limit=TASK_PAGE)
            page = self._json("GET", f"/campaigns/{_segment(campaign_id)}/tasks", params=params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def logs(self, campaign_id: str, task: str) -> str:
        """A task's history, error and log files; `task` is STEP or STEP/POINT."""
        task_id = _segment(task.strip().replace("/", ":"))
        return self._request(
            "GET",
            f"/campaigns/{_segment(campaign_id)}/tasks/{task_id}/logs",
            headers={"Accept": "text/plain"},
        ).text

    def events(
        self, campaign_id: str, *, after: int = 0, follow: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Events numbered after `after`; with `follow`, live until the campaign has ended."""
        if follow:
            yield from self._follow(campaign_id, after)
            return
        while True:
            page = self._json(
                "GET",
                f"/campaigns/{_segment(campaign_id)}/events",
                params={"after": after, "limit": EVENT_PAGE},
            )
            yield from page["items"]
            if len(page["items"]) < EVENT_PAGE:
                return
            after = page["next_after"]

    def cluster(self) -> dict[str, Any]:
        return self._json("GET", "/cluster")

    def wait(
        self,
        campaign_id: str,
        *,
        progress: bool | Callable[[dict[str, Any]], None] = False,
        poll: float = 1.0,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Poll the status until the campaign has ended; the final status.

        `progress=True` prints one line per step to stderr when its counts change; a callable
        gets each status that differs from the one before.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        report = _print_progress(campaign_id) if progress is True else progress or None
        seen: Any = None
        while True:
            status = self.status(campaign_id)
            current = (status["state"], status["steps"])
            if report is not None and current != seen:
                report(status)
            seen = current
            if status["state"] in CAMPAIGN_TERMINAL:
                return status
            if deadline is not None and time.monotonic() + poll > deadline:
                raise WaitTimeout(
                    f"campaign {campaign_id} did not finish within {timeout:g} s "
                    f"(it is {status['state']}, and goes on)",
                    url=_safe_url(self.url),
                )
            time.sleep(poll)

    # ------------------------------------------------------------------ transport
    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(
                f"{_safe_url(self.url)} answered {path} with something other than JSON: "
                "is it the orchestrator's URL?",
                status=response.status_code,
                url=_safe_url(self.url),
            ) from None

    def _request(
        self, method: str, path: str, *, retry: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One call, retried when that is safe: idempotent ones (GET, or `retry=True`) on
        connection errors and 502/503/504; any call whose connection could not be made."""
        retry = method == "GET" if retry is None else retry
        url = self._base + path
        for attempt in range(1, ATTEMPTS + 1):
            last = attempt == ATTEMPTS
            try:
                response = self._http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
                if last:
                    raise self._unreachable(exc) from exc
            except httpx.TransportError as exc:
                if last or not retry:
                    raise self._unreachable(exc) from exc
            else:
                if response.status_code not in RETRY_STATUSES or not retry or last:
                    if response.is_error:
                        raise ClientError.from_response(response)
                    return response
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, exc: httpx.TransportError) -> ClientError:
        url = _safe_url(self.url)
        if isinstance(exc, httpx.TimeoutException):
            message = f"the orchestrator at {url} did not answer in time ({type(exc).__name__})"
        else:
            message = f"cannot reach the orchestrator at {url}: {exc or type(exc).__name__}"
        return ClientError(message, url=url)

    def _follow(self, campaign_id: str, after: int) -> Iterator[dict[str, Any]]:
        """The live stream; a dropped connection resumes after the last event received."""
        last_id, failures = after, 0
        while True:
            try:
                with closing(self._open_stream(campaign_id, last_id)) as response:
                    for event_id, data in _server_sent_events(response.iter_lines()):
                        last_id, failures = event_id if event_id is not None else last_id, 0
                        yield {**_EVENT_SHAPE, **json.loads(data)}
            except (httpx.TransportError, ClientError) as exc:
                failures += 1
                retryable = not isinstance(exc, ClientError) or exc.status in RETRY_STATUSES
                if not retryable or failures >= ATTEMPTS:
                    if isinstance(exc, ClientError):
                        raise
                    raise self._unreachable(exc) from exc
                time.sleep(BACKOFF_SECONDS * 2 ** (failures - 1))
                continue
            # The server ends the stream once the campaign has ended and every event was sent;
            # an end before that is a proxy or a restart closing the connection: reconnect.
            if self.status(campaign_id)["state"] in CAMPAIGN_TERMINAL:
                yield from self.events(campaign_id, after=last_id)
                return
            time.sleep(BACKOFF_SECONDS)

    def _open_stream(self, campaign_id: str, last_event_id: int) -> httpx.Response:
        request = self._http.build_request(
            "GET",
            f"{self._base}/campaigns/{_segment(campaign_id)}/events",
            headers={"Accept": "text/event-stream", "Last-Event-ID": str(last_event_id)},
            timeout=httpx.Timeout(self.timeout, read=max(self.timeout, STREAM_READ_TIMEOUT)),
        )
        response = self._http.send(request, stream=True)
        if response.is_error:
            response.read()
            response.close()
            raise ClientError.from_response(response)
        return response


def _document(spec: CampaignSpec | Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(spec, CampaignSpec):
        return spec.to_document()
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str | Path):
        return read_document(spec)
    document = getattr(spec, "document", None)  # a builder `Campaign`
    if callable(document):
        return dict(document())
    raise TypeError(
        f"cannot submit a {type(spec).__name__}: pass a spec file, a mapping or a CampaignSpec"
    )


def _params(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
