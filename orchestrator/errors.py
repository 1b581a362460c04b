"""Every error the orchestrator package raises on purpose."""

from __future__ import annotations

from dataclasses import dataclass


class OrchestratorError(Exception):
    """Base of the orchestrator's own errors."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a campaign spec, located by a dotted field path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(OrchestratorError):
    """A campaign spec is invalid; `issues` names every offending field."""

    def __init__(self, issues: list[SpecIssue]):
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))

    @classmethod
    def single(cls, path: str, message: str) -> SpecError:
        return cls([SpecIssue(path, message)])


class SettingsError(OrchestratorError):
    """The service's configuration is invalid."""


class StoreError(OrchestratorError):
    """The state store could not be read or written."""


class CampaignNotFound(OrchestratorError):
    def __init__(self, campaign_id: str):
        self.campaign_id = campaign_id
        super().__init__(f"no campaign with id {campaign_id!r}")


class TaskNotFound(OrchestratorError):
    def __init__(self, campaign_id: str, task: str, hint: str = ""):
        super().__init__(f"campaign {campaign_id!r} has no task {task!r}{hint}")


class InvalidRequest(OrchestratorError):
    """A request on a campaign that its current state does not allow."""


class InvalidThrottle(OrchestratorError):
    """A throttle that cannot apply: a limit below 1, or a step that is not the campaign's
    batch step; `field` names the offending part of the request (`limit` or `step`)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class CampaignBusy(OrchestratorError):
    """Another live runner holds the campaign."""

    def __init__(self, campaign_id: str, runner: str):
        self.runner = runner
        super().__init__(f"campaign {campaign_id!r} is being run by {runner}")


class LeaseLost(CampaignBusy):
    """This runner's lease on the campaign ran out or was taken over: its writes are refused
    (fenced) and it stops running the campaign without writing more."""

    def __init__(self, campaign_id: str, runner: str):
        self.campaign_id = campaign_id
        OrchestratorError.__init__(
            self,
            f"runner {runner} no longer holds the lease on campaign {campaign_id!r} "
            "(it ran out or another runner took it over): its writes are refused",
        )
        self.runner = runner


class TaskTimeout(OrchestratorError):
    """A task ran longer than its step's `timeout`."""


class CommandFailed(OrchestratorError):
    """A `command` step's shell command exited non-zero."""

    def __init__(self, returncode: int, stderr_tail: str):
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(f"command exited with status {returncode}: {stderr_tail[-2000:]}")


class ChunkStartedBefore(OrchestratorError):
    """Dask started a chunk again (its worker left while it ran): it runs none of its points,
    and the engine queues again those it has no outcome of."""


class ResultsError(OrchestratorError):
    """A result could not be written to or read from the results location."""
