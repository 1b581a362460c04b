"""Results on S3: moto's server over HTTP on loopback is the S3 endpoint (nothing mocked)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cluster import LocalCompute
from orchestrator.errors import ResultsError
from orchestrator.results import ResultsLocation, upload
from orchestrator.service import Service
from tests.helpers import spec_doc, submit, task_states, wait_for
from tests.orchestrator.results.conftest import BUCKET, SECRET, S3Server, free_port, point_at
from tests.orchestrator.results.workloads import MiB, content

pytestmark = [pytest.mark.timeout(120), pytest.mark.aws]


@pytest.fixture
def service(service: Service) -> Service:
    """The shared service, with the test bucket's prefix as one of its results roots."""
    service.settings.results_roots = [service.settings.results_url, f"s3://{BUCKET}/prefix"]
    return service


def s3_doc(name: str, points: int, **with_: Any) -> dict[str, Any]:
    doc = spec_doc(
        name,
        {
            "write": {
                "run": "tests.orchestrator.results.workloads:write_data",
                "foreach": True,
                "with": with_,
            }
        },
        x={"range": [0, points]},
    )
    doc["results"] = f"s3://{BUCKET}/prefix"
    return doc


def objects(s3: S3Server, prefix: str) -> dict[str, dict[str, Any]]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o for page in pages for o in page.get("Contents", [])}


def key_of(url: str) -> str:
    return url.removeprefix(f"s3://{BUCKET}/")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_campaign_outputs_land_on_s3_verified(
    service: Service, s3_compute: LocalCompute, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, s3_compute, s3.url, service, BLOCK_SIZE=5 * MiB)
    doc = s3_doc("to-s3", 4, size=3000, big=12 * MiB)  # point 0's file goes up in 3 parts
    doc["steps"]["shout"] = {
        "command": "echo point {{ x }}; echo oops >&2; echo '{\"y\": {{ x }}}' > result.json",
        "foreach": True,
    }
    cid = submit(service, doc)
    assert service.run(cid, s3_compute) == "succeeded"

    base = service.store.get_campaign(cid).results_url
    assert base.startswith(f"s3://{BUCKET}/prefix/to-s3-")
    stored = objects(s3, key_of(base))
    for x in range(4):
        key = f"{key_of(base)}/write/{x:06d}/data.bin"
        expected = content(x, 12 * MiB if x == 0 else 3000)
        assert stored[key]["Size"] == len(expected)
        body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert sha256(body) == sha256(expected)
        assert f"{key_of(base)}/write/{x:06d}/sub/note.txt" in stored
        assert f"{key_of(base)}/write/{x:06d}/task.log" in stored
        for log in ("stdout.log", "stderr.log"):
            assert f"{key_of(base)}/shout/{x:06d}/{log}" in stored
    big = s3.client().head_object(
        Bucket=BUCKET, Key=f"{key_of(base)}/write/000000/data.bin", ChecksumMode="ENABLED"
    )
    assert big["ETag"].strip('"').endswith("-3")  # multipart, 3 parts of 5 MiB
    assert big["ContentType"] == "application/octet-stream"

    manifest = ResultsLocation(base).read_manifest()
    assert sorted((e["step"], e["point"]) for e in manifest) == sorted(
        (step, x) for step in ("write", "shout") for x in range(4)
    )
    assert all(e["state"] == "succeeded" for e in manifest)
    by_task = {(e["step"], e["point"]): e for e in manifest}
    assert by_task[("shout", 2)]["result"] == {"y": 2}
    assert by_task[("write", 1)]["output"] == f"{base}/write/000001"
    outputs = {o["path"]: o for o in by_task[("write", 1)]["outputs"]}
    assert sorted(outputs) == ["data.bin", "sub/note.txt", "task.log"]
    assert outputs["data.bin"]["digest"] == "sha256:" + sha256(content(1, 3000))

    logs = service.logs(cid, "shout/3")  # read back from S3
    assert "point 3" in logs and "oops" in logs
    assert "wrote 3000 bytes" in service.logs(cid, "write/1")


def test_manifest_is_readable_while_the_campaign_runs(
    service: Service, s3_compute: LocalCompute, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, s3_compute, s3.url)
    cid = submit(service, s3_doc("midway", 8, seconds=0.5))
    location = ResultsLocation(service.store.get_campaign(cid).results_url)
    runner = threading.Thread(target=service.run, args=(cid, s3_compute))
    runner.start()
    seen: list[int] = []
    while runner.is_alive():
        lines = location.read_manifest()
        if 0 < len(lines) < 8:
            seen.append(len(lines))
            assert all(line["state"] == "succeeded" for line in lines)
        time.sleep(0.1)
    runner.join()
    assert seen, "no partial manifest was seen while the campaign ran"
    assert sorted(e["point"] for e in location.read_manifest()) == list(range(8))


def test_an_outage_delays_success_and_loses_nothing(
    service: Service, s3_compute: LocalCompute, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, s3_compute, s3.url, service, MANIFEST_WAIT=0.2)
    cid = submit(service, s3_doc("outage", 10, size=200_000, seconds=0.4))
    result: list[str] = []
    runner = threading.Thread(target=lambda: result.append(service.run(cid, s3_compute)))
    runner.start()

    def succeeded() -> set[int | None]:
        states = task_states(service, cid, "write")
        return {p for p, state in states.items() if state == "succeeded"}

    deadline = time.monotonic() + 60
    while len(succeeded()) < 2:
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.05)
    s3.stop()
    time.sleep(1.5)  # outcomes already on their way to the engine get recorded
    before = succeeded()
    time.sleep(3.0)
    during = succeeded()
    in_flight = {p for p, state in task_states(service, cid, "write").items() if state == "running"}
    s3.start()
    runner.join(60)

    assert during == before, "a task succeeded while S3 was down"
    assert len(before) < 10 and in_flight, "no task was uploading during the outage"
    assert result == ["succeeded"]
    base = service.store.get_campaign(cid).results_url
    stored = objects(s3, key_of(base))
    for x in range(10):
        key = f"{key_of(base)}/write/{x:06d}/data.bin"
        body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert sha256(body) == sha256(content(x, 200_000))
        assert stored[key]["Size"] == 200_000
    manifest = ResultsLocation(base).read_manifest()
    assert sorted(e["point"] for e in manifest) == list(range(10))


def test_an_unreachable_endpoint_fails_the_task_clearly(
    service: Service, s3_compute: LocalCompute, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    point_at(monkeypatch, s3_compute, endpoint, service, UPLOAD_DEADLINE=1.5, MANIFEST_DEADLINE=0.5)
    doc = s3_doc("nowhere", 1)
    doc["steps"]["write"]["retries"] = 0
    cid = submit(service, doc)
    started = time.monotonic()
    assert service.run(cid, s3_compute) == "failed"
    assert time.monotonic() - started < 30
    task = service.store.get_task(cid, "write", 0)
    assert task is not None and task.state == "failed" and task.error
    base = service.store.get_campaign(cid).results_url
    last = task.error.strip().splitlines()[-1]
    assert f"could not store {base}/write/000000/" in last
    assert endpoint in last and "gave up after 1.5s" in last
    assert SECRET not in task.error and "testing" not in task.error


def test_a_large_file_goes_up_in_verified_parts(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = content(7, 12 * MiB + 123)
    (tmp_path / "big.bin").write_bytes(data)
    location = ResultsLocation(f"s3://{BUCKET}/direct")
    [stored] = location.store_dir(tmp_path, "step/000007", block_size=5 * MiB)
    assert stored.size == len(data) and stored.digest == f"sha256:{sha256(data)}"
    assert stored.url == f"s3://{BUCKET}/direct/step/000007/big.bin"
    head = s3.client().head_object(Bucket=BUCKET, Key="direct/step/000007/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")
    # the same bytes through fsspec (what Outcome.load and `logs` use)
    assert hashlib.sha256(location.read_bytes("step/000007/big.bin")).hexdigest() == sha256(data)

    small = location.write_bytes("step/result.json", b'{"a": 1}')
    assert small == f"s3://{BUCKET}/direct/step/result.json"
    assert location.read_bytes("step/result.json") == b'{"a": 1}'
    # an upload the store cannot verify is not "stored"
    monkeypatch.setattr(upload._S3Put, "_verify", _always_mismatch)
    monkeypatch.setattr(upload, "UPLOAD_DEADLINE", 0.5)
    with pytest.raises(ResultsError, match=r"could not store \S+/big.bin at http://127\.0\.0\.1"):
        location.store_dir(tmp_path, "step/000008", block_size=5 * MiB)


def _always_mismatch(self: Any, expected: str) -> None:
    raise upload.TransientError(f"{self.rpath}: stored SHA-256 checksum x, expected {expected}")


def test_manifest_parts_wait_out_an_outage_in_order(s3: S3Server) -> None:
    location = ResultsLocation(f"s3://{BUCKET}/parts")
    location.append_manifest([{"point": 0}])
    assert [e["point"] for e in location.read_manifest()] == [0]  # stored on return
    s3.stop()
    started = time.monotonic()
    location.append_manifest([{"point": 1}, {"point": 2}])
    location.append_manifest([{"point": 3}])
    # the caller is not held for the outage: each append waits MANIFEST_WAIT (1 s), not the
    # part's deadline (300 s); the bound leaves room for a loaded machine
    assert time.monotonic() - started < 20
    assert not location.flush_manifest(0.1)
    s3.start()
    assert location.flush_manifest(30)
    assert [e["point"] for e in location.read_manifest()] == [0, 1, 2, 3]


def test_manifest_parts_given_up_are_reported_once(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part that cannot be stored by its deadline is given up, and the location says so
    (the engine then fails a campaign that would otherwise end with an incomplete manifest)."""
    monkeypatch.setattr(upload, "MANIFEST_DEADLINE", 1.0)
    monkeypatch.setattr(upload, "MANIFEST_WAIT", 0.1)
    location = ResultsLocation(f"s3://{BUCKET}/given-up")
    location.append_manifest([{"point": 0}])
    assert location.flush_manifest(30) and location.manifest_given_up() == []
    s3.stop()
    try:
        location.append_manifest([{"point": 1}, {"point": 2}])
        assert location.flush_manifest(30)  # given up, not waiting any more
        lost = location.manifest_given_up()
    finally:
        s3.start()
    assert len(lost) == 1 and lost[0].startswith("2 line(s) not written: ")
    assert location.manifest_given_up() == []


def test_lost_manifest_lines_are_written_again_on_resume(
    service: Service, s3_compute: LocalCompute, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest parts queued for S3 are lost (given up after their deadline, or with a
    crash of the runner): the resumed campaign's manifest lists every finished task again,
    with its output files."""
    point_at(monkeypatch, s3_compute, s3.url)
    cid = submit(service, s3_doc("rebuilt", 12, seconds=0.3))
    engine = service.engine(cid, s3_compute)
    runner = threading.Thread(target=engine.run)
    runner.start()
    wait_for(
        lambda: (
            len(task_states(service, cid, "write")) >= 4
            and sum(s == "succeeded" for s in task_states(service, cid, "write").values()) >= 4
        ),
        60,
        "some finished points",
    )
    engine.stop()
    runner.join(60)
    base = service.store.get_campaign(cid).results_url
    parts = [key for key in objects(s3, key_of(base)) if "/manifest/part-" in key]
    assert parts
    for key in parts:
        s3.client().delete_object(Bucket=BUCKET, Key=key)
    assert ResultsLocation(base).read_manifest() == []

    assert service.run(cid, s3_compute) == "succeeded"
    manifest = ResultsLocation(base).read_manifest()
    by_task = {(e["step"], e["point"]): e for e in manifest}
    assert set(by_task) == {("write", x) for x in range(12)}
    for x in range(12):
        entry = by_task[("write", x)]
        assert entry["state"] == "succeeded" and entry["result"] == {"x": x, "size": 1000}
        outputs = {o["path"]: o for o in entry["outputs"]}
        assert sorted(outputs) == ["data.bin", "sub/note.txt", "task.log"]
        assert outputs["data.bin"]["digest"] == "sha256:" + sha256(content(x, 1000))
