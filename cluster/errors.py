"""Every error the cluster package raises on purpose."""

from __future__ import annotations


class ClusterError(Exception):
    """Base of the cluster package's errors."""


class ClusterConfigError(ClusterError):
    """The cluster settings are invalid or name a kind that is not available."""


class UnsafeDirective(ClusterError, ValueError):
    """A value for a job script's `#SBATCH` line or prologue would span several lines."""


class ClusterStartError(ClusterError):
    """The project's compute could not be started or reached."""


class SSHError(ClusterError):
    """Talking to the cluster's head node over SSH failed."""


class HostUnreachable(SSHError):
    """The head node could not be reached (network, DNS, refused, timed out)."""


class AuthenticationFailed(SSHError):
    """The head node refused our key (or the key could not be loaded)."""


class HostKeyRejected(SSHError):
    """The head node's host key is unknown or does not match: never connect blindly."""


class RemoteCommandFailed(SSHError):
    """A command on the head node ran and failed: its exit status and stderr are kept."""

    def __init__(self, command: str, exit_status: int | None, stderr: str, stdout: str = ""):
        self.command = command
        self.exit_status = exit_status
        self.stderr = stderr
        self.stdout = stdout
        detail = stderr.strip() or stdout.strip() or "no output"
        super().__init__(f"`{_short(command)}` exited with status {exit_status}: {detail}")


class RemoteCommandTimeout(RemoteCommandFailed):
    """A command on the head node did not finish within its timeout."""

    def __init__(self, command: str, timeout: float):
        self.timeout = timeout
        SSHError.__init__(self, f"`{_short(command)}` did not finish within {timeout:g}s")
        self.command, self.exit_status, self.stderr, self.stdout = command, None, "", ""


class SlurmError(ClusterError):
    """SLURM refused or failed a request (the message is SLURM's own)."""


class SubmitRejected(SlurmError):
    """`sbatch` rejected a job script (bad partition, too much memory, ...)."""


def _short(command: str, limit: int = 200) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."
