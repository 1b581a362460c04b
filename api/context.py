"""What the routes share: settings, the service, token verification, and what runs the
campaigns: the background runner (all-in-one, instance) or the platform (front door)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.auth import TokenVerifier
from api.issuer import DevIssuer
from api.status_cache import REFRESH_AHEAD, StatusCache
from orchestrator.platform.front_door import FrontDoor
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    service: Service
    verifier: TokenVerifier
    runner: Runner | None  # None on a front door: it runs nothing itself
    dev_issuer: DevIssuer | None = None
    role: str = "all-in-one"  # all-in-one | front-door | instance
    front_door: FrontDoor | None = None
    projects: frozenset[str] | None = None  # an instance's project; None: every project
    status_source: Callable[[str], dict[str, Any]] | None = None
    statuses: StatusCache = field(init=False)  # GET …/campaigns/{id}, served from memory

    def __post_init__(self) -> None:
        self.statuses = StatusCache(
            self.status_source or self.service.status, refresh_ahead=REFRESH_AHEAD
        )

    def wake(self) -> None:
        """A campaign has new work (submitted, extended, restarted): whatever runs it looks
        now (the runner for its next campaign; the front door for a project to bring up)."""
        if self.runner is not None:
            self.runner.wake()
        if self.front_door is not None:
            self.front_door.wake()

    def serves(self, project: str) -> bool:
        """Whether this process answers for `project` (an instance only for its own)."""
        return self.projects is None or project in self.projects
