"""What a task hands back: small results inline, large ones by reference to the results location.

An Outcome travels worker → worker as a downstream task's argument (a Dask future), and
worker → engine for the record; so it stays small, whatever the task returned.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from typing import Any

from orchestrator.results import open_url

_MISSING = object()


@dataclass
class Outcome:
    ok: bool
    value: Any = None
    """The returned value, when small enough to travel inline (`inline` is True)."""
    inline: bool = True
    stored: Any = None
    """The JSON-able value kept in the state store (None when too large or not JSON)."""
    result_url: str | None = None
    """Where the value was written when it is not JSON-able or is large."""
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    """The files the task left in its output folder, stored before it succeeded: one
    `StoredFile.to_dict()` each (`path`, `url`, `size`, `digest` "sha256:…", `media_type`)."""

    def load(self) -> Any:
        """The task's value, from inline data or from the results location."""
        if self.inline:
            return self.value
        if self.stored is not None:
            return self.stored
        if self.result_url is None:
            return None
        return decode(self.result_url, open_url(self.result_url))

    @classmethod
    def from_record(cls, result: Any, result_url: str | None) -> Outcome:
        """An outcome for a task finished earlier (read back from the store on resume)."""
        if result_url is None:
            return cls(ok=True, value=result, inline=True, stored=result)
        return cls(ok=True, value=None, inline=False, stored=result, result_url=result_url)


def encode(value: Any, store_limit: int) -> tuple[Any, bytes | None, str]:
    """(JSON value for the store or None, bytes to write or None, file name)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None, pickle.dumps(value, protocol=5), "result.pkl"
    if len(text) <= store_limit:
        return value, None, "result.json"
    return None, text.encode(), "result.json"


def decode(url: str, data: bytes) -> Any:
    if url.endswith(".json"):
        return json.loads(data)
    return pickle.loads(data)


def unwrap(value: Any) -> Any:
    """Upstream arguments as the callable expects them: values, not Outcomes."""
    if isinstance(value, Outcome):
        return value.load()
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def first_of(messages: list[str]) -> str:
    """The first of several problems, saying how many more there are."""
    more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    return f"{messages[0]}{more}"


def last_line(text: str) -> str:
    """The line of an error worth showing (a traceback's last), at most 500 characters."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else text[:500]
