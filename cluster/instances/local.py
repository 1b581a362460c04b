"""`local`: one `orchestrator serve --role instance --project VLAB/P` subprocess per project
on this machine, on a free loopback port, with a pid file (`STATE_DIR/<slug>.json`);
stopped by its pid. What the instance needs besides (how to check tokens, the store, its
cluster) comes in `environment`: this module adds only the project. Of this process's own
environment (the front door's: its store URL, its AWS credentials) an instance inherits only
the allow-list of `cluster.environment` and the names given in `inherit`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from cluster.environment import EXTRA_NAMES_VARIABLE, allowed_environment
from cluster.instances.base import (
    PROJECTS_ENV,
    Instance,
    instance_arguments,
    instance_slug,
    projects_env,
)
from cluster.instances.errors import InstanceStartError

# `python -m orchestrator.cli serve`: the same interpreter and package as this process
# (`--role instance --project P --host H --port N` follow).
DEFAULT_COMMAND = (sys.executable, "-m", "orchestrator.cli", "serve")


class LocalInstances:
    kind = "local"

    def __init__(
        self,
        state_dir: Path,
        *,
        command: Sequence[str] = DEFAULT_COMMAND,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        inherit: Sequence[str] = (),
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ):
        self._dir = state_dir
        self._command = list(command)
        self._host = host
        self._env = dict(env or {})
        self._inherit = list(inherit)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, project: str, environment: Mapping[str, str] | None = None) -> Instance:
        found = self.find(project)
        if found is not None:
            return found
        self._dir.mkdir(parents=True, exist_ok=True)
        port = _free_port(self._host)
        # nothing of this process's environment but the allow-list and the names in `inherit`
        env = allowed_environment(
            self._inherit,
            {**self._env, **(environment or {}), PROJECTS_ENV: projects_env(project)},
        )
        env.pop(EXTRA_NAMES_VARIABLE, None)  # meant for workers, not for an instance
        log_path = self._dir / f"{instance_slug(project)}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [*self._command, *instance_arguments(project, self._host, port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not killed by a Ctrl-C meant for this process
            )
        self._children[process.pid] = process
        url = f"http://{self._host}:{port}"
        self._pid_file(project).write_text(
            json.dumps({"project": project, "pid": process.pid, "port": port, "url": url})
        )
        try:
            self._wait_healthy(process, url, log_path)
        except InstanceStartError:
            self.stop(project)
            raise
        return Instance(project, self.kind, str(process.pid), "running", url)

    def find(self, project: str) -> Instance | None:
        entry = self._entry(project)
        if entry is None:
            return None
        if not self._alive(int(entry["pid"])):
            self._pid_file(project).unlink(missing_ok=True)
            return None
        return Instance(project, self.kind, str(entry["pid"]), "running", entry["url"])

    def stop(self, project: str) -> bool:
        entry = self._entry(project)
        if entry is None:
            return False
        pid = int(entry["pid"])
        stopped = False
        if self._alive(pid):
            os.kill(pid, signal.SIGTERM)
            stopped = True
            if not self._wait_gone(pid, self._stop_timeout):
                os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5.0)
        self._pid_file(project).unlink(missing_ok=True)
        return stopped

    def _wait_healthy(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise InstanceStartError(
                    f"orchestrator serve exited with status {process.returncode}: "
                    + log.read_text(errors="replace")[-1000:]
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise InstanceStartError(f"orchestrator serve not healthy within {self._start_timeout}s")

    def _alive(self, pid: int) -> bool:
        """Alive, and still the process we started (a pid may be reused once it is gone)."""
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        return [part.decode(errors="replace") for part in cmdline[: len(self._command)]] == (
            self._command
        )

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        child = self._children.get(pid)
        if child is not None:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            self._children.pop(pid, None)
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.1)
        return False

    def _entry(self, project: str) -> dict[str, Any] | None:
        try:
            entry: dict[str, Any] = json.loads(self._pid_file(project).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return entry if entry.get("project") == project else None

    def _pid_file(self, project: str) -> Path:
        return self._dir / f"{instance_slug(project)}.json"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
