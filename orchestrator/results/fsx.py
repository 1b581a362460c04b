"""Lustre → S3: export a campaign's files from FSx for Lustre to its data repository (S3).

Campaigns on a cluster with FSx write their results on Lustre; the file system's data
repository association links a Lustre folder to an S3 prefix, and an `EXPORT_TO_REPOSITORY`
data repository task copies what changed. `start_export` starts one for the campaign's
paths; `wait_export` follows it to its end and fails clearly when FSx says it failed.
The FSx client is a boto3 `fsx` client (credentials, region and endpoint the boto3 way).
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ResultsError
from orchestrator.results.retry import is_transient

_RUNNING = frozenset({"PENDING", "EXECUTING", "CANCELING"})


class ExportFailed(ResultsError):
    """An FSx export task ended FAILED or CANCELED, or could not be started or followed."""


class ExportTimeout(ExportFailed):
    """An FSx export task was still running when we stopped waiting."""


@dataclass(frozen=True)
class ExportCounts:
    """What an export task did, from FSx's `Status`."""

    task_id: str
    total: int
    succeeded: int
    failed: int
    report: str | None = None
    """Where FSx wrote the report of failed files (when a report path was asked for)."""


def fsx_client() -> Any:
    """A boto3 FSx client (credentials, region and endpoint the boto3 way)."""
    import boto3

    return boto3.client("fsx")


def request_token(campaign_id: str, scope: str, generation: int) -> str:
    """The `ClientRequestToken` of one export: the same after a crash (FSx then answers with
    the task already started), a new one for the next export of the same scope."""
    digest = hashlib.sha256(f"{campaign_id}\0{scope}\0{generation}".encode()).hexdigest()
    return f"wf-{digest[:40]}"


@dataclass(frozen=True)
class Repository:
    """A data repository association: a folder of the file system exported to an S3 prefix."""

    path: str
    """Where it appears on the cluster (the mount point joined with FSx's `FileSystemPath`)."""
    url: str
    """Its S3 prefix (`DataRepositoryPath`)."""

    def s3_url(self, cluster_path: str) -> str | None:
        """Where the export puts the file at `cluster_path`, if it is under this folder."""
        root = self.path.rstrip("/")
        if cluster_path != root and not cluster_path.startswith(root + "/"):
            return None
        rest = cluster_path[len(root) :].lstrip("/")
        return f"{self.url.rstrip('/')}/{rest}" if rest else self.url.rstrip("/")


def repositories(fsx_client: Any, file_system_id: str, mount_point: str) -> list[Repository]:
    """The file system's S3 data repository associations (longest path first), from FSx."""
    found: list[Repository] = []
    request: dict[str, Any] = {
        "Filters": [{"Name": "file-system-id", "Values": [file_system_id]}],
    }
    while True:
        try:
            reply = fsx_client.describe_data_repository_associations(**request)
        except Exception as exc:
            raise ExportFailed(
                f"could not read the data repository associations of {file_system_id}: {exc}"
            ) from exc
        for association in reply.get("Associations") or []:
            target = str(association.get("DataRepositoryPath") or "")
            if not target.startswith("s3://") or association.get("Lifecycle") == "DELETING":
                continue
            inside = str(association.get("FileSystemPath") or "/").strip("/")
            path = posixpath.join(posixpath.normpath(mount_point), inside).rstrip("/")
            found.append(Repository(path or "/", target))
        token = reply.get("NextToken")
        if not token:
            return sorted(found, key=lambda r: len(r.path), reverse=True)
        request["NextToken"] = token


def relative_paths(paths: Iterable[str], mount_point: str = "/fsx") -> list[str]:
    """FSx wants paths relative to the file system's root: `/fsx/a/b` → `a/b`."""
    root = posixpath.normpath(mount_point)
    found = []
    for path in paths:
        normal = posixpath.normpath(path)
        if normal.startswith("/"):
            if normal != root and not normal.startswith(root.rstrip("/") + "/"):
                raise ExportFailed(f"{path} is not on the Lustre file system at {mount_point}")
            normal = posixpath.relpath(normal, root)
        if normal == "." or normal.startswith(".."):
            raise ExportFailed(f"{path!r}: export a campaign's folder, not the whole file system")
        found.append(normal)
    return found


def start_export(
    fsx_client: Any,
    file_system_id: str,
    paths: Iterable[str],
    *,
    mount_point: str = "/fsx",
    report_path: str | None = None,
    request_token: str | None = None,
) -> str:
    """Start an `EXPORT_TO_REPOSITORY` task for `paths`; returns its task id.

    `report_path` (a path on the file system, under a data repository association) asks FSx
    for a CSV report of the files that failed; without it there is no report.
    `request_token` (≤ 63 characters, e.g. derived from the campaign id and step) makes a
    repeated start — after a crash, say — return the same task instead of a second one.
    """
    report: dict[str, Any] = {"Enabled": False}
    if report_path is not None:
        [relative] = relative_paths([report_path], mount_point)
        report = {
            "Enabled": True,
            "Path": relative,
            "Format": "REPORT_CSV_20191124",
            "Scope": "FAILED_FILES_ONLY",
        }
    request: dict[str, Any] = {
        "Type": "EXPORT_TO_REPOSITORY",
        "FileSystemId": file_system_id,
        "Paths": relative_paths(paths, mount_point),
        "Report": report,
    }
    if request_token is not None:
        request["ClientRequestToken"] = request_token
    try:
        reply = fsx_client.create_data_repository_task(**request)
    except Exception as exc:
        raise ExportFailed(
            f"could not start the export of {request['Paths']} on {file_system_id}: {exc}"
        ) from exc
    return str(reply["DataRepositoryTask"]["TaskId"])


def wait_export(
    fsx_client: Any,
    task_id: str,
    poll: float = 30.0,
    timeout: float = 6 * 3600.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ExportCounts:
    """Follow an export task until it ends; its counts when it SUCCEEDED.

    Raises ExportFailed (with FSx's `FailureDetails`) when it ends FAILED or CANCELED, and
    ExportTimeout when it is still running after `timeout` seconds. Transient errors while
    polling (throttling, connection problems) are waited out.
    """
    ends = time.monotonic() + timeout
    while True:
        try:
            reply = fsx_client.describe_data_repository_tasks(TaskIds=[task_id])
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() >= ends:
                raise ExportFailed(f"could not follow FSx export task {task_id}: {exc}") from exc
            sleep(poll)
            continue
        tasks = reply.get("DataRepositoryTasks") or []
        if not tasks:
            raise ExportFailed(f"FSx export task {task_id} does not exist")
        task = tasks[0]
        lifecycle = task.get("Lifecycle")
        if lifecycle == "SUCCEEDED":
            return _counts(task_id, task)
        if lifecycle not in _RUNNING:
            raise ExportFailed(_failure_message(task_id, task))
        if time.monotonic() >= ends:
            raise ExportTimeout(
                f"FSx export task {task_id} is still {lifecycle} after {timeout:g}s"
                f" ({_progress(task)})"
            )
        sleep(poll)


def _counts(task_id: str, task: dict[str, Any]) -> ExportCounts:
    status = task.get("Status") or {}
    report = task.get("Report") or {}
    return ExportCounts(
        task_id=task_id,
        total=int(status.get("TotalCount", 0)),
        succeeded=int(status.get("SucceededCount", 0)),
        failed=int(status.get("FailedCount", 0)),
        report=report.get("Path") if report.get("Enabled") else None,
    )


def _progress(task: dict[str, Any]) -> str:
    counts = _counts(str(task.get("TaskId", "")), task)
    return f"{counts.succeeded} of {counts.total} files exported, {counts.failed} failed"


def _failure_message(task_id: str, task: dict[str, Any]) -> str:
    details = (task.get("FailureDetails") or {}).get("Message") or "no details given"
    paths = ", ".join(task.get("Paths") or []) or "the whole file system"
    message = (
        f"FSx export task {task_id} ({paths}) ended {task.get('Lifecycle')}: {details}"
        f" ({_progress(task)})"
    )
    counts = _counts(task_id, task)
    if counts.report:
        message += f"; the failed files are listed under {counts.report}"
    return message
