"""The CLI against a running server: used when ORCHESTRATOR_URL is set."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from orchestrator.client import Client, read_spec_file
from orchestrator.store import EventRecord


def remote() -> Client | None:
    """A client of the server ORCHESTRATOR_URL names (with ORCHESTRATOR_TOKEN and
    ORCHESTRATOR_PROJECT), or None: the CLI then works on the embedded default directly."""
    return Client.from_settings() if os.environ.get("ORCHESTRATOR_URL") else None


def remote_document(spec: str, results: str | None) -> dict[str, Any]:
    """The spec file as sent to a server, which validates it (and imports its callables)."""
    document = read_spec_file(spec)
    return document if results is None else {**document, "results": results}


def event_record(event: dict[str, Any]) -> EventRecord:
    fields: dict[str, Any] = {f.name: event.get(f.name) for f in dataclasses.fields(EventRecord)}
    return EventRecord(**fields)
