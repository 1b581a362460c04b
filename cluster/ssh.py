"""The one place that speaks SSH: commands on the cluster's head node, through asyncssh.

The transport owns one connection on an event loop of its own (a daemon thread), so any
caller can use it: `await transport.run(...)` from any event loop (the Dask cluster's, a
test's) or `transport.run_sync(...)` from plain threads (the engine). Host keys are always
verified; connection options the settings don't name are passed to `asyncssh.connect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import shlex
import tarfile
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncssh

from cluster.errors import (
    AuthenticationFailed,
    HostKeyRejected,
    HostUnreachable,
    RemoteCommandFailed,
    RemoteCommandTimeout,
    SSHError,
)
from cluster.secrets import load_private_key
from cluster.settings import SSHSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")
Command = str | Sequence[str]


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str


def render_command(command: Command) -> str:
    return command if isinstance(command, str) else shlex.join(command)


class SSHTransport:
    def __init__(self, settings: SSHSettings):
        if not settings.host:
            raise SSHError("no SSH host configured (cluster.ssh.host)")
        if not settings.known_hosts:
            raise HostKeyRejected("no known host keys configured (cluster.ssh.known_hosts)")
        self.settings = settings
        self.commands_run = 0  # for benchmarks: SSH commands sent so far
        self._conn: asyncssh.SSHClientConnection | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"ssh-{settings.host}", daemon=True
        )
        self._thread.start()
        self._connect_lock = asyncio.Lock()
        self._sessions = asyncio.Semaphore(settings.max_concurrency)
        self._closed = False

    @property
    def target(self) -> str:
        user = f"{self.settings.username}@" if self.settings.username else ""
        return f"{user}{self.settings.host}:{self.settings.port}"

    # ----------------------------------------------------------------- public
    async def run(
        self,
        command: Command,
        *,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        retry: bool = True,
    ) -> CommandResult:
        """Run a command on the head node. `retry=False` for commands that must not run twice
        (sbatch): a connection lost after sending it is then an error, not a retry."""
        return await self._on_own_loop(self._run(command, input, timeout, check, retry))

    def run_sync(
        self,
        command: Command,
        *,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        retry: bool = True,
    ) -> CommandResult:
        future = asyncio.run_coroutine_threadsafe(
            self._run(command, input, timeout, check, retry), self._loop
        )
        return future.result()

    def call_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine that uses this transport from a plain thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def put_files_sync(
        self, directory: str, files: Mapping[str, bytes], *, private: bool = False
    ) -> None:
        """Write files under a remote folder in one command (a tar stream on stdin).
        `private`: the folder and files readable by our user only (keys, certificates)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o600 if private else 0o755 if name.endswith(".sh") else 0o644
                archive.addfile(info, io.BytesIO(data))
        quoted = shlex.quote(directory)
        umask = "umask 077 && " if private else ""
        self.run_sync(
            f"{umask}mkdir -p {quoted} && tar -x -f - -C {quoted}",
            input=buffer.getvalue(),
            retry=True,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result(10)
            except Exception:  # closing anyway
                logger.debug("SSH disconnect failed", exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def drop_connection(self) -> None:
        """Close the current connection (the next command reconnects); for fault tests."""
        asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result(10)

    # --------------------------------------------------------------- private
    async def _on_own_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def _run(
        self,
        command: Command,
        input: str | bytes | None,
        timeout: float | None,
        check: bool,
        retry: bool,
    ) -> CommandResult:
        if self._closed:
            raise SSHError("the SSH transport is closed")
        text = render_command(command)
        limit = timeout or self.settings.command_timeout
        attempts = self.settings.reconnect_attempts + 1 if retry else 1
        for attempt in range(1, attempts + 1):
            conn = await self._connection()
            try:
                async with self._sessions:
                    self.commands_run += 1
                    result = await conn.run(
                        text,
                        input=input,
                        check=False,
                        timeout=limit,
                        encoding=None if isinstance(input, bytes) else "utf-8",
                    )
            except asyncssh.TimeoutError as exc:
                raise RemoteCommandTimeout(text, limit) from exc
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as exc:
                await self._disconnect()
                if attempt >= attempts:
                    raise HostUnreachable(
                        f"lost the SSH connection to {self.target} running `{text[:80]}`: {exc}"
                    ) from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            out, err = _text(result.stdout), _text(result.stderr)
            status = result.exit_status if result.exit_status is not None else -1
            if check and status != 0:
                raise RemoteCommandFailed(text, status, err, out)
            return CommandResult(text, status, out, err)
        raise AssertionError("unreachable")

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._connect_lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            attempts = self.settings.reconnect_attempts + 1
            for attempt in range(1, attempts + 1):
                try:
                    self._conn = await self._connect()
                    return self._conn
                except HostUnreachable as exc:
                    if attempt >= attempts:
                        raise
                    delay = self._backoff(attempt)
                    logger.warning(
                        "SSH to %s failed (%s); retrying in %.1fs", self.target, exc, delay
                    )
                    await asyncio.sleep(delay)
            raise AssertionError("unreachable")

    async def _connect(self) -> asyncssh.SSHClientConnection:
        s = self.settings
        options = connect_options(s)
        try:
            return await asyncssh.connect(s.host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRejected(f"host key of {self.target} not accepted: {exc}") from exc
        except asyncssh.PermissionDenied as exc:
            raise AuthenticationFailed(f"{self.target} refused our key: {exc}") from exc
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachable(f"cannot reach {self.target}: {exc}") from exc

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(conn.wait_closed(), 5)

    def _backoff(self, attempt: int) -> float:
        delay = self.settings.reconnect_backoff * 2 ** (attempt - 1)
        return float(min(delay, 30.0) * random.uniform(0.8, 1.2))


def connect_options(settings: SSHSettings) -> dict[str, Any]:
    """`asyncssh.connect` keyword arguments (all but the host) for these settings: our key,
    the configured known hosts (always verified), no agent, keepalives, and `connect_options`
    passed through. Raises AuthenticationFailed when the key or known hosts cannot be read."""
    s = settings
    if not s.known_hosts:
        raise HostKeyRejected("no known host keys configured (cluster.ssh.known_hosts)")
    try:
        key = load_private_key(s)
        known_hosts = _known_hosts(s.known_hosts)
    except (ValueError, OSError, asyncssh.KeyImportError) as exc:
        raise AuthenticationFailed(f"cannot load the SSH key or known hosts: {exc}") from exc
    options: dict[str, Any] = dict(s.connect_options)
    options.setdefault("keepalive_interval", s.keepalive_interval)
    options.setdefault("connect_timeout", s.connect_timeout)
    options.update(
        port=s.port,
        username=s.username,
        client_keys=[key],
        known_hosts=known_hosts,
        agent_path=None,
    )
    return options


def _known_hosts(value: str) -> Any:
    """A known_hosts file path, or the content itself (lines with a key type in them)."""
    if "\n" in value.strip() or " ssh-" in value or " ecdsa-" in value:
        return asyncssh.import_known_hosts(value)
    return asyncssh.read_known_hosts(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
