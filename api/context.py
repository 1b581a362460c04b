"""What the routes share: settings, the service, token verification, the background runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.auth import TokenVerifier
from api.issuer import DevIssuer
from api.status_cache import StatusCache
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    service: Service
    verifier: TokenVerifier
    runner: Runner
    dev_issuer: DevIssuer | None = None
    statuses: StatusCache = field(init=False)  # GET …/campaigns/{id}, served from memory

    def __post_init__(self) -> None:
        self.statuses = StatusCache(self.service.status)
