"""`connect()`: a session on the embedded default (in this process) or on a server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.backends import Backend, EmbeddedBackend, HTTPBackend
from orchestrator.client import Client
from orchestrator.spec import CampaignSpec, import_paths_for, read_document
from orchestrator.steering.run import Run


class Session:
    def __init__(self, backend: Backend):
        self.backend = backend

    def submit(self, spec: CampaignSpec | Mapping[str, Any] | str | Path | Any) -> Run:
        """Submit a campaign: a spec file, a document, a CampaignSpec or a builder."""
        spec_path = None
        if hasattr(spec, "spec") and callable(spec.spec):  # orchestrator.builder.Campaign
            spec = spec.spec()
        if isinstance(spec, CampaignSpec):
            document = spec.to_document()
        elif isinstance(spec, str | Path):
            document, spec_path = read_document(spec), spec
        else:
            document = dict(spec)
        return Run(self.backend, self.backend.submit(document, import_paths_for(spec_path)))

    def run(self, campaign_id: str) -> Run:
        """A handle on a campaign submitted earlier (from anywhere)."""
        self.backend.status(campaign_id)  # CampaignNotFound / 404 now rather than later
        return Run(self.backend, campaign_id)

    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign's status, newest first."""
        return self.backend.list()

    @property
    def dashboard_link(self) -> str | None:
        return self.backend.dashboard_link()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    url: str | None = None,
    *,
    token: str | None = None,
    project: str | None = None,
    settings: Any = None,
) -> Session:
    """The embedded default in this process (no `url`: settings from the environment and
    orchestrator.toml; campaigns run on a LocalCluster started on first use), or the server at
    `url` with a bearer `token` for `project` ("vlab/project")."""
    if url is None:
        return Session(EmbeddedBackend.open(settings, background=True))
    if not project:
        raise ValueError("connect(url, ...) needs project='vlab/project'")
    return Session(HTTPBackend(Client(url, token or "", project)))
