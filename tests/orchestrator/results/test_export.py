"""FSx for Lustre → S3 export through boto3's `fsx` client.

moto does not implement FSx data repository tasks, so botocore's Stubber stands in for FSx
at the client: requests are still checked against the real FSx API model (parameter names,
types, required fields) and replies parsed as boto3 would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from orchestrator.results.fsx import (
    ExportCounts,
    ExportFailed,
    ExportTimeout,
    relative_paths,
    repositories,
    start_export,
    wait_export,
)

FS = "fs-0123456789abcdef0"
TASK = "task-0123456789abcdef0"


@pytest.fixture
def fsx() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "fsx",
        region_name="eu-north-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def task(lifecycle: str, **extra: Any) -> dict[str, Any]:
    return {
        "DataRepositoryTasks": [
            {
                "TaskId": TASK,
                "Lifecycle": lifecycle,
                "Type": "EXPORT_TO_REPOSITORY",
                "CreationTime": "2026-01-01T00:00:00Z",
                "FileSystemId": FS,
                "Paths": ["campaigns/fi-curve-1"],
                **extra,
            }
        ]
    }


def test_start_export_sends_relative_paths_and_no_report(fsx: tuple[Any, Stubber]) -> None:
    client, stubber = fsx
    stubber.add_response(
        "create_data_repository_task",
        {"DataRepositoryTask": task("PENDING")["DataRepositoryTasks"][0]},
        {
            "Type": "EXPORT_TO_REPOSITORY",
            "FileSystemId": FS,
            "Paths": ["campaigns/fi-curve-1/simulate", "campaigns/fi-curve-1/manifest.jsonl"],
            "Report": {"Enabled": False},
            "ClientRequestToken": "fi-curve-1-simulate",
        },
    )
    task_id = start_export(
        client,
        FS,
        ["/fsx/campaigns/fi-curve-1/simulate", "campaigns/fi-curve-1/manifest.jsonl"],
        request_token="fi-curve-1-simulate",
    )
    assert task_id == TASK


def test_start_export_with_a_report(fsx: tuple[Any, Stubber]) -> None:
    client, stubber = fsx
    stubber.add_response(
        "create_data_repository_task",
        {"DataRepositoryTask": task("PENDING")["DataRepositoryTasks"][0]},
        {
            "Type": "EXPORT_TO_REPOSITORY",
            "FileSystemId": FS,
            "Paths": ["campaigns/c1"],
            "Report": {
                "Enabled": True,
                "Path": "campaigns/c1/export-report",
                "Format": "REPORT_CSV_20191124",
                "Scope": "FAILED_FILES_ONLY",
            },
        },
    )
    assert (
        start_export(
            client, FS, ["/fsx/campaigns/c1"], report_path="/fsx/campaigns/c1/export-report"
        )
        == TASK
    )


def test_start_export_failure_is_clear(fsx: tuple[Any, Stubber]) -> None:
    client, stubber = fsx
    stubber.add_client_error(
        "create_data_repository_task",
        service_error_code="DataRepositoryTaskExecuting",
        service_message="An export is already running on this file system",
        http_status_code=400,
    )
    with pytest.raises(ExportFailed, match=r"could not start the export .*already running"):
        start_export(client, FS, ["/fsx/campaigns/c1"])


def test_paths_must_be_on_the_file_system() -> None:
    assert relative_paths(["/scratch/fsx/a"], mount_point="/scratch/fsx") == ["a"]
    with pytest.raises(ExportFailed, match="not on the Lustre file system"):
        relative_paths(["/home/me/a"])
    with pytest.raises(ExportFailed, match="not the whole file system"):
        relative_paths(["/fsx"])


def test_wait_follows_the_task_to_success(fsx: tuple[Any, Stubber]) -> None:
    client, stubber = fsx
    expected = {"TaskIds": [TASK]}
    stubber.add_response("describe_data_repository_tasks", task("PENDING"), expected)
    stubber.add_client_error(  # throttled while polling: waited out
        "describe_data_repository_tasks",
        service_error_code="ThrottlingException",
        http_status_code=400,
    )
    stubber.add_response(
        "describe_data_repository_tasks",
        task("EXECUTING", Status={"TotalCount": 10, "SucceededCount": 4, "FailedCount": 0}),
        expected,
    )
    stubber.add_response(
        "describe_data_repository_tasks",
        task("SUCCEEDED", Status={"TotalCount": 10, "SucceededCount": 10, "FailedCount": 0}),
        expected,
    )
    naps: list[float] = []
    counts = wait_export(client, TASK, poll=5, timeout=60, sleep=naps.append)
    assert counts == ExportCounts(task_id=TASK, total=10, succeeded=10, failed=0)
    assert naps == [5, 5, 5]


@pytest.mark.parametrize("lifecycle", ["FAILED", "CANCELED"])
def test_wait_raises_with_fsxs_failure_details(fsx: tuple[Any, Stubber], lifecycle: str) -> None:
    client, stubber = fsx
    stubber.add_response(
        "describe_data_repository_tasks",
        task(
            lifecycle,
            FailureDetails={"Message": "Export failed: the S3 bucket denied access"},
            Status={"TotalCount": 10, "SucceededCount": 7, "FailedCount": 3},
            Report={"Enabled": True, "Path": "campaigns/fi-curve-1/report"},
        ),
        {"TaskIds": [TASK]},
    )
    with pytest.raises(ExportFailed) as info:
        wait_export(client, TASK, poll=0, sleep=lambda _: None)
    message = str(info.value)
    assert f"ended {lifecycle}: Export failed: the S3 bucket denied access" in message
    assert "7 of 10 files exported, 3 failed" in message
    assert "campaigns/fi-curve-1/report" in message and TASK in message


def test_wait_gives_up_after_its_timeout(fsx: tuple[Any, Stubber]) -> None:
    client, stubber = fsx
    stubber.add_response("describe_data_repository_tasks", task("EXECUTING"), {"TaskIds": [TASK]})
    with pytest.raises(ExportTimeout, match="still EXECUTING after 0s"):
        wait_export(client, TASK, poll=1, timeout=0, sleep=lambda _: None)


def test_wait_on_an_unknown_task(fsx: tuple[Any, Stubber]) -> None:
    client, stubber = fsx
    stubber.add_client_error(
        "describe_data_repository_tasks",
        service_error_code="DataRepositoryTaskNotFound",
        service_message="task not found",
        http_status_code=400,
    )
    with pytest.raises(ExportFailed, match=r"could not follow FSx export task .*not found"):
        wait_export(client, TASK, poll=0, sleep=lambda _: None)


def test_repositories_are_read_page_by_page_and_map_paths_to_s3(
    fsx: tuple[Any, Stubber],
) -> None:
    client, stubber = fsx
    request = {"Filters": [{"Name": "file-system-id", "Values": [FS]}]}
    association = {"FileSystemId": FS, "Lifecycle": "AVAILABLE"}
    stubber.add_response(
        "describe_data_repository_associations",
        {
            "Associations": [
                {**association, "FileSystemPath": "/scratch", "DataRepositoryPath": "s3://s/p/"}
            ],
            "NextToken": "page-2",
        },
        request,
    )
    stubber.add_response(
        "describe_data_repository_associations",
        {
            "Associations": [
                {**association, "FileSystemPath": "/scratch/deep", "DataRepositoryPath": "s3://d"},
                {**association, "FileSystemPath": "/nfs", "DataRepositoryPath": "nfs://x/y"},
            ]
        },
        {**request, "NextToken": "page-2"},
    )
    found = repositories(client, FS, "/lustre")
    assert [(r.path, r.url) for r in found] == [
        ("/lustre/scratch/deep", "s3://d"),  # the longest path first
        ("/lustre/scratch", "s3://s/p/"),
    ]
    deep, scratch = found
    assert deep.s3_url("/lustre/scratch/deep/a/b.h5") == "s3://d/a/b.h5"
    assert scratch.s3_url("/lustre/scratch/run-1/out.txt") == "s3://s/p/run-1/out.txt"
    assert scratch.s3_url("/lustre/scratch2/out.txt") is None  # a folder boundary, not a prefix
