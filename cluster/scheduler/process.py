"""Start and stop the scheduler (and the local workers) as processes of their own.

A child is `python -m cluster.scheduler.child` with the allow-listed environment
(`cluster.environment`): it inherits none of the service's secrets. Its TLS key reaches it on
stdin, never on disk or in its environment. It is stopped by pid, and it exits by itself when
its stdin closes, so that it does not outlive a service that was killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from distributed.deploy.spec import ProcessInterface

from cluster.environment import allowed_environment
from cluster.errors import ClusterStartError
from cluster.scheduler.certificates import ComputeCertificates, Role
from cluster.scheduler.pages import DashboardPage, page_requests

logger = logging.getLogger(__name__)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class ChildProcess:
    """One child: started with a request, answering with one line, stopped by pid."""

    def __init__(
        self,
        name: str,
        request: dict[str, Any],
        *,
        extra_env: Sequence[str] = (),
        prefix: Sequence[str] = (),
        log_level: str = "warning",
    ):
        self.name = name
        self.request = request
        self.extra_env = list(extra_env)
        self.prefix = list(prefix)  # a command that wraps the child (a namespace)
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.reply: dict[str, Any] = {}
        self._reply: int | None = None  # the read end of the reply pipe, until the reply

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def spawn(self) -> None:
        """Start the process: it imports Dask while its starter prepares the request."""
        if self.proc is not None:
            return
        env = allowed_environment(
            self.extra_env, {"PYTHONUNBUFFERED": "1", "DASK_LOGGING__DISTRIBUTED": self.log_level}
        )
        # the reply comes on a pipe of its own: the child's stdout (and its workers', and their
        # tasks') is the service's stderr, never a pipe nobody reads, nor `run --json`'s output
        reply_read, reply_write = os.pipe()
        command = [*self.prefix, sys.executable, "-m", "cluster.scheduler.child", str(reply_write)]
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=_stderr(),
                env=env,
                close_fds=True,
                pass_fds=(reply_write,),
                start_new_session=True,  # a terminal's Ctrl-C reaches the service only
            )
        except OSError as exc:
            os.close(reply_read)
            raise ClusterStartError(f"cannot start the {self.name} process: {exc}") from exc
        finally:
            os.close(reply_write)
        self._reply = reply_read

    def start(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Send the request; the process's reply once it listens."""
        self.spawn()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(self.request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it exited: said below
        line = self._read_line(timeout)
        try:
            self.reply = json.loads(line)
        except ValueError:
            code = self.proc.poll()
            self.stop()
            raise ClusterStartError(
                f"the {self.name} process did not start "
                + (f"(exit code {code}; " if code is not None else f"within {timeout:g}s (")
                + "its messages are in the service's log)"
            ) from None
        logger.debug("%s process %s: %s", self.name, self.proc.pid, self.reply)
        return self.reply

    def _read_line(self, timeout: float) -> bytes:
        assert self.proc is not None and self._reply is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        try:
            while not buffer.endswith(b"\n") and time.monotonic() < deadline:
                ready, _, _ = select.select([self._reply], [], [], 0.5)
                if not ready:
                    if self.proc.poll() is not None:
                        break  # it exited
                    continue
                chunk = os.read(self._reply, 65536)
                if not chunk:
                    break
                buffer += chunk
        finally:
            os.close(self._reply)
            self._reply = None
        return buffer

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close its stdin (it closes and exits), then SIGTERM, then SIGKILL, by pid."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            logger.warning("the %s process %s did not exit: terminating it", self.name, proc.pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)  # its own session: its worker processes too
            except ProcessLookupError:
                return
            try:
                proc.wait(5.0)
                return
            except subprocess.TimeoutExpired:
                continue


def _stderr() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded interpreter)
        return subprocess.DEVNULL


def scheduler_request(
    certificates: ComputeCertificates,
    options: dict[str, Any],
    pages: list[DashboardPage] | None = None,
    worker_saturation: float | None = None,
) -> dict[str, Any]:
    config = {}
    if worker_saturation is not None:
        config["distributed.scheduler.worker-saturation"] = worker_saturation
    return {
        "role": "scheduler",
        "security": certificates.fields(Role.SCHEDULER),
        "options": options,
        "pages": page_requests(pages or []) if options.get("dashboard", True) else [],
        "config": config,
    }


def workers_request(
    certificates: ComputeCertificates,
    scheduler: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    return {
        "role": "workers",
        "security": certificates.fields(Role.WORKER),
        "scheduler": scheduler,
        "options": options,
    }


class SchedulerProcess(ProcessInterface):
    """The scheduler of a `SpecCluster` (dask-jobqueue's `scheduler_cls`) in a process of its
    own. Takes the scheduler's options as the in-process `Scheduler` would; the `security`
    option is ignored (the child gets the scheduler's key from `certificates`)."""

    def __init__(
        self,
        *,
        certificates: ComputeCertificates,
        extra_env: Sequence[str] = (),
        pages: list[DashboardPage] | None = None,
        worker_saturation: float | None = None,
        security: Any = None,
        protocol: str | None = None,
        **options: Any,
    ):
        super().__init__()
        self.contact_address = options.get("contact_address")
        self.child = ChildProcess(
            "Dask scheduler",
            scheduler_request(certificates, options, pages, worker_saturation),
            extra_env=extra_env,
        )
        self.dashboard_port: int | None = None

    async def start(self) -> None:
        reply = await asyncio.to_thread(self.child.start)
        self.address = reply["address"]
        self.dashboard_port = reply.get("dashboard")
        await super().start()

    async def close(self) -> None:
        await asyncio.to_thread(self.child.stop)
        await super().close()
