"""The client's errors: every failure of a request is a `ClientError` (an
`OrchestratorError`), whose `url` never carries credentials or a query; `WaitTimeout` is
also a `TimeoutError`.
"""

from __future__ import annotations

import builtins
from typing import Any

import httpx

from orchestrator.client._urls import _safe_url
from orchestrator.errors import OrchestratorError, SpecIssue


class ClientError(OrchestratorError):
    """The server refused a request (`status` set), or could not be reached (`status` None).

    `title`, `detail` and `errors` (a list of `{"field", "message"}`) come from the RFC 9457
    problem details of the answer; `str()` names each offending field, one per line.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: builtins.list[dict[str, Any]] | None = None,
        url: str | None = None,
    ):
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.url = url
        super().__init__(message)

    @property
    def issues(self) -> builtins.list[SpecIssue]:
        """The offending fields, as the CLI prints a local SpecError's."""
        return [SpecIssue(str(e.get("field", "")), str(e.get("message", ""))) for e in self.errors]

    @classmethod
    def from_response(cls, response: httpx.Response) -> ClientError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # a proxy's HTML page, or nothing
            body = {"detail": " ".join(response.text.split())[:200] or None}
        title = str(body.get("title") or response.reason_phrase or "Error")
        detail = body.get("detail")
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        head = f"{title} (HTTP {status})"
        if errors:
            lines = [
                str(SpecIssue(str(e.get("field", "")), str(e.get("message", "")))) for e in errors
            ]
            message = head + ":\n" + "\n".join(f"  {line}" for line in lines)
        else:
            message = f"{head}: {detail}" if detail else head
        return cls(
            message,
            status=status,
            title=title,
            detail=detail,
            errors=errors,
            url=_safe_url(str(response.request.url)),
        )


class WaitTimeout(ClientError, TimeoutError):
    """`Client.wait` gave up before the campaign finished (the campaign goes on)."""
