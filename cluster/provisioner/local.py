"""The `local` back end (the default): hands out the single-node SLURM of deploy/local-slurm.

Its settings come from, in order: the exports given in the settings, the environment (as
`eval "$(deploy/local-slurm/up)"` leaves it), or the output of running `up_command`. Every
project gets the same SLURM; which projects hold it is kept in a small JSON file.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

from cluster.provisioner.base import BackendStatus, ClusterState, Connection, CreateRequest
from cluster.provisioner.errors import BackendUnavailable
from cluster.provisioner.settings import LocalBackendSettings

PREFIX = "ORCHESTRATOR_CLUSTER__SSH__"


class LocalBackend:
    kind = "local"
    needs_aws_resources = False

    def __init__(self, settings: LocalBackendSettings, state_file: Path):
        self._settings = settings
        self._state_file = state_file
        self._lock = threading.Lock()

    def create(self, request: CreateRequest) -> BackendStatus:
        connection = self.connection()
        with self._lock:
            names = self._names()
            names.add(request.name)
            self._save(names)
        return BackendStatus(ClusterState.READY, connection=connection)

    def describe(self, name: str) -> BackendStatus:
        with self._lock:
            held = name in self._names()
        if not held:
            return BackendStatus(ClusterState.DELETED)
        try:
            return BackendStatus(ClusterState.READY, connection=self.connection())
        except BackendUnavailable as exc:
            return BackendStatus(ClusterState.FAILED, reason=str(exc))

    def delete(self, name: str) -> BackendStatus:
        with self._lock:
            names = self._names()
            names.discard(name)
            self._save(names)
        return BackendStatus(ClusterState.DELETED)

    def connection(self) -> Connection:
        exports = self._exports()
        try:
            return Connection(
                host=exports[PREFIX + "HOST"],
                port=int(exports.get(PREFIX + "PORT", "22")),
                username=exports[PREFIX + "USERNAME"],
                known_hosts=exports[PREFIX + "KNOWN_HOSTS"],
                key_file=exports[PREFIX + "KEY_FILE"],
            )
        except (KeyError, ValueError) as exc:
            raise BackendUnavailable(
                f"the local SLURM's settings lack {exc}: run "
                '`eval "$(deploy/local-slurm/up)"` (as root) first'
            ) from None

    def _exports(self) -> dict[str, str]:
        if self._settings.exports:
            return dict(self._settings.exports)
        if PREFIX + "HOST" in os.environ:
            return {k: v for k, v in os.environ.items() if k.startswith("ORCHESTRATOR_")}
        if not self._settings.up_command:
            raise BackendUnavailable(
                'no local SLURM: run `eval "$(deploy/local-slurm/up)"` (as root) first'
            )
        proc = subprocess.run(
            self._settings.up_command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            raise BackendUnavailable(f"local SLURM did not start: {proc.stderr.strip()[-500:]}")
        exports: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line.removeprefix("export ").partition("=")
                exports[key.strip()] = value.strip()
        return exports

    def _names(self) -> set[str]:
        try:
            return set(json.loads(self._state_file.read_text()))
        except FileNotFoundError:
            return set()

    def _save(self, names: set[str]) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(sorted(names)))
        temporary.replace(self._state_file)
