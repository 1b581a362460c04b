"""Lustre → S3 for one campaign: FSx export tasks after its steps or at its end.

A campaign whose results are a cluster path on the cluster's FSx for Lustre is exported to
the file system's data repository (S3) by `EXPORT_TO_REPOSITORY` tasks: one per step as the
step ends (`export_after: step`), and one for the whole campaign folder at the end (the
manifest included; FSx copies only what changed). Each export is followed in a thread of
its own and reported through `on_event` (`export` started / succeeded / failed, which the
engine records as events); the campaign ends `failed`, naming the export, when one fails.
A resumed campaign asks again with the same request token, so FSx returns the export
already under way instead of starting another.

The FSx calls themselves are in `orchestrator.results.fsx`; this module knows nothing of
the engine (it gets the past exports and a callback for what happens to each new one).
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.results import fsx
from orchestrator.results.location import cluster_path
from orchestrator.store import EventRecord

logger = logging.getLogger(__name__)

CAMPAIGN = "campaign"  # the scope of the export of the whole campaign folder

ExportEvent = Callable[[str | None, str, str], None]
"""What happened to an export: (its step, None for the whole campaign; state; message)."""


@dataclass(frozen=True)
class ExportConfig:
    file_system_id: str
    mount_dir: str = "/lustre"
    after: Literal["step", "campaign"] = "campaign"
    poll_interval: float = 30.0
    timeout: float = 6 * 3600.0

    def covers(self, cluster_path: str | None) -> bool:
        """True when results at `cluster_path` are on this file system."""
        if cluster_path is None:
            return False
        mount = posixpath.normpath(self.mount_dir)
        return cluster_path.startswith(mount.rstrip("/") + "/")


class Exports:
    def __init__(
        self,
        config: ExportConfig,
        campaign_id: str,
        folder: str,
        on_event: ExportEvent,
        history: list[EventRecord],
    ):
        self.config = config
        self.campaign_id = campaign_id
        self.folder = folder
        self.on_event = on_event
        # exports that ended before (an earlier run): the next one of a scope is a new one
        self._ended = Counter(
            e.step or CAMPAIGN
            for e in history
            if e.kind == "export" and e.state in ("succeeded", "failed")
        )
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.failures: list[str] = []
        self.repositories = self._repositories()

    def _repositories(self) -> list[fsx.Repository]:
        """Where the exports put the campaign's files (FSx's data repository associations);
        none known when FSx cannot tell (the exports will then say why they fail)."""
        try:
            return fsx.repositories(
                fsx.fsx_client(), self.config.file_system_id, self.config.mount_dir
            )
        except Exception as exc:
            logger.warning("the S3 locations of exported files are unknown: %s", exc)
            return []

    def exported_url(self, url: str) -> str | None:
        """The S3 URL a file of the campaign (`cluster:///…`) gets once exported."""
        path = cluster_path(url)
        if path is None:
            return None
        for repository in self.repositories:  # longest path first
            found = repository.s3_url(path)
            if found is not None:
                return found
        return None

    def after_step(self, step: str) -> None:
        if self.config.after == "step":
            self._start(step, [posixpath.join(self.folder, step)])

    def at_end(self, tick: Callable[[], None], every: float) -> list[str]:
        """Export the whole campaign folder and wait for every export (calling `tick`, the
        runner's heartbeat, `every` seconds meanwhile); the failures."""
        self._start(CAMPAIGN, [self.folder])
        for thread in list(self._threads):
            while thread.is_alive():
                thread.join(every)
                tick()
        return list(self.failures)

    def _start(self, scope: str, paths: list[str]) -> None:
        try:
            client = fsx.fsx_client()  # one per export, made here: in the engine's order
        except Exception as exc:  # no region, no credentials: a failed export, said so
            message = f"FSx export of {', '.join(paths)} could not start: {exc}"
            self.failures.append(message)
            self.on_event(None if scope == CAMPAIGN else scope, "failed", message)
            return
        thread = threading.Thread(
            target=self._run,
            args=(client, scope, paths),
            name=f"fsx-export-{scope}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _run(self, client: Any, scope: str, paths: list[str]) -> None:
        step = None if scope == CAMPAIGN else scope
        with self._lock:
            token = fsx.request_token(self.campaign_id, scope, self._ended[scope])
            self._ended[scope] += 1
        try:
            task_id = fsx.start_export(
                client,
                self.config.file_system_id,
                paths,
                mount_point=self.config.mount_dir,
                request_token=token,
            )
            self.on_event(step, "started", f"FSx export {task_id} of {', '.join(paths)} to S3")
            counts = fsx.wait_export(
                client, task_id, self.config.poll_interval, self.config.timeout
            )
        except fsx.ExportFailed as exc:
            self.failures.append(str(exc))
            self.on_event(step, "failed", str(exc))
            return
        except Exception as exc:  # a bug or the unexpected: still a failed export, said so
            logger.exception("FSx export of %s failed", paths)
            message = f"FSx export of {', '.join(paths)} failed: {exc}"
            self.failures.append(message)
            self.on_event(step, "failed", message)
            return
        summary = (
            f"FSx export {counts.task_id}: {counts.succeeded} of {counts.total} files"
            f" exported to S3, {counts.failed} failed"
        )
        if counts.failed:
            where = f"; the failed files are listed under {counts.report}" if counts.report else ""
            self.failures.append(summary + where)
            self.on_event(step, "failed", summary + where)
            return
        self.on_event(step, "succeeded", summary)
