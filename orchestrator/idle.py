"""Idle teardown: a project's HPC cluster is deleted after `provisioner.idle_timeout` seconds
without campaigns, judged from the service's store (a running campaign keeps it alive).
On a front door, the project's instance is stopped by the same rule, before its cluster."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cluster.provisioner import Provisioner
from orchestrator.service import Service

logger = logging.getLogger(__name__)


def teardown_idle_clusters(provisioner: Provisioner, service: Service) -> list[str]:
    """The projects whose idle cluster was torn down now."""
    now = time.time()
    activity = {
        project: datetime.fromtimestamp(when, UTC)
        for project, when in service.last_activity(now).items()
    }
    return provisioner.teardown_idle(datetime.fromtimestamp(now, UTC), activity)


def stop_idle_projects(
    provisioner: Provisioner, service: Service, stop_instance: Callable[[str], bool]
) -> list[str]:
    """Stop the instance of every project without campaigns for `idle_timeout` seconds
    (`stop_instance(project)`: whether one ran), then tear down the idle clusters; the
    projects where something was stopped."""
    now = time.time()
    idle_for = provisioner.settings.idle_timeout
    stopped = {
        project
        for project, when in service.last_activity(now).items()
        if now - when >= idle_for and stop_instance(project)
    }
    return sorted(stopped.union(teardown_idle_clusters(provisioner, service)))


class IdleTeardown:
    """Runs `teardown_idle_clusters` every `interval` seconds in a thread (for `serve`)."""

    def __init__(self, provisioner: Provisioner, service: Service, interval: float):
        self.provisioner, self.service, self.interval = provisioner, service, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="idle-teardown", daemon=True)

    def start(self) -> IdleTeardown:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for project in teardown_idle_clusters(self.provisioner, self.service):
                    logger.info("tore down the idle cluster of %s", project)
            except Exception:  # AWS or the store briefly unavailable: next time
                logger.exception("idle teardown failed")
