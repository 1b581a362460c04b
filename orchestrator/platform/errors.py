"""Errors of bringing a project's instance up (each fails the campaigns that waited for it)."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class PlatformError(OrchestratorError):
    """A project's cluster or instance could not be brought up; the message says why."""


class NoTier(PlatformError):
    """No tier of the provisioner has the partitions a campaign names."""
