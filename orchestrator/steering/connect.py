"""`connect()`: a session on the embedded default (in this process) or on a server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.client import Client, read_spec_file
from orchestrator.spec import CampaignSpec
from orchestrator.steering.backends import Backend, Embedded, Remote
from orchestrator.steering.run import Run


class Session:
    def __init__(self, backend: Backend):
        self.backend = backend

    def submit(self, spec: CampaignSpec | Mapping[str, Any] | str | Path | Any) -> Run:
        """Submit a campaign: a spec file, a document, a CampaignSpec or a builder."""
        import_paths: list[str] = [os.getcwd()]
        if hasattr(spec, "spec") and callable(spec.spec):  # orchestrator.builder.Campaign
            spec = spec.spec()
        if isinstance(spec, CampaignSpec):
            document = spec.to_document()
        elif isinstance(spec, str | Path):
            document = read_spec_file(spec)
            import_paths.insert(0, str(Path(spec).resolve().parent))
        else:
            document = dict(spec)
        return Run(self.backend, self.backend.submit(document, import_paths))

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
        from orchestrator.dashboard import register_campaigns_page
        from orchestrator.runner import Runner
        from orchestrator.service import DEFAULT_PROJECT, Service
        from orchestrator.settings import load_settings

        service = Service(settings or load_settings())
        register_campaigns_page(service.store, DEFAULT_PROJECT)
        runner = Runner(service, poll_interval=0.2)
        runner.start()
        return Session(Embedded(service, runner))
    if not project:
        raise ValueError("connect(url, ...) needs project='vlab/project'")
    return Session(Remote(Client(url, token or "", project)))
