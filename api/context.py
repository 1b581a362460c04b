"""What the routes share: settings, the service, token verification, the background runner."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import TokenVerifier
from api.issuer import DevIssuer
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
