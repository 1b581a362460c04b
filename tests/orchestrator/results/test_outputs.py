"""What a task reports about its files (Outcome.outputs), for local and S3 results.

These call the worker-side `execute_task` in this process; S3 is moto's server over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.execute import TaskCall, execute_task
from orchestrator.engine.outcome import Outcome
from tests.orchestrator.results.conftest import BUCKET, S3Server
from tests.orchestrator.results.workloads import content


def call(results_url: str, target: str, **fields: Any) -> TaskCall:
    return TaskCall(
        campaign_id="c0ffee",
        step="write",
        kind="run",
        target=f"tests.orchestrator.results.workloads:{target}",
        point=3,
        attempt=1,
        results_url=results_url,
        parameters={"x": 3},
        pass_params=("x",),
        **fields,
    )


def by_path(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {o["path"]: o for o in outcome.outputs}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_local_outputs_are_described_in_place(tmp_path: Path) -> None:
    outcome = execute_task(
        call(str(tmp_path), "write_data", with_={"size": 5000}, pass_ctx=True), {}
    )
    assert outcome.ok, outcome.error
    folder = tmp_path / "write" / "000003"
    files = by_path(outcome)
    assert sorted(files) == ["data.bin", "sub/note.txt", "task.log"]
    assert files["data.bin"] == {
        "path": "data.bin",
        "url": f"{tmp_path}/write/000003/data.bin",
        "size": 5000,
        "digest": digest(content(3, 5000)),
        "media_type": "application/octet-stream",
    }
    assert files["task.log"]["media_type"] == "text/plain"
    assert files["sub/note.txt"]["digest"] == digest((folder / "sub" / "note.txt").read_bytes())


@pytest.mark.aws
def test_s3_outputs_are_uploaded_and_described(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where staging folders go
    outcome = execute_task(call(f"s3://{BUCKET}/p", "big_value"), {})
    assert list(tmp_path.iterdir()) == []  # the staging folder is removed
    assert outcome.ok, outcome.error
    [result] = outcome.outputs
    assert result["path"] == "result.json" and result["media_type"] == "application/json"
    assert outcome.result_url == result["url"] == f"s3://{BUCKET}/p/write/000003/result.json"
    body = s3.client().get_object(Bucket=BUCKET, Key="p/write/000003/result.json")["Body"].read()
    assert result["size"] == len(body) and result["digest"] == digest(body)
    assert json.loads(body) == list(range(20_003))


@pytest.mark.aws
def test_a_failed_task_keeps_only_its_logs_on_s3(s3: S3Server) -> None:
    outcome = execute_task(call(f"s3://{BUCKET}/p", "fail_after_writing", pass_ctx=True), {})
    assert not outcome.ok and "point 3 failed" in (outcome.error or "")
    assert outcome.outputs == []
    listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix="p/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["p/write/000003/task.log"]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("a.json", "application/json"),
        ("run/stdout.log", "text/plain"),
        ("trace.csv", "text/csv"),
        ("noext", "application/octet-stream"),
    ],
)
def test_media_types(name: str, expected: str) -> None:
    from orchestrator.results import media_type

    assert media_type(name) == expected
