"""Chunks with results on S3 (moto's server over HTTP on loopback; nothing mocked): each
point's files land in its own folder, and a chunk's start mark is an exclusive write."""

from __future__ import annotations

import pytest

from cluster import LocalCompute
from orchestrator.engine.execute import TaskCall
from orchestrator.engine.execute_chunk import MARKS, ChunkCall, execute_chunk
from orchestrator.errors import ChunkStartedBefore
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from tests.helpers import submit
from tests.orchestrator.results.conftest import BUCKET, S3Server, point_at
from tests.orchestrator.results.test_s3 import key_of, objects, s3_doc
from tests.orchestrator.results.workloads import content

pytestmark = [pytest.mark.timeout(120), pytest.mark.aws]


@pytest.fixture
def service(service: Service) -> Service:
    service.settings.results_roots = [service.settings.results_url, f"s3://{BUCKET}/prefix"]
    return service


def test_chunked_points_land_on_s3_each_in_its_folder(
    service: Service, s3_compute: LocalCompute, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, s3_compute, s3.url, service)
    doc = s3_doc("chunks-to-s3", 6, size=2000)
    doc["steps"]["write"]["chunk"] = 3
    cid = submit(service, doc)
    assert service.run(cid, s3_compute) == "succeeded"
    base = service.store.get_campaign(cid).results_url
    stored = objects(s3, key_of(base))
    for x in range(6):
        key = f"{key_of(base)}/write/{x:06d}/data.bin"
        assert s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == content(x, 2000)
    marks = [k for k in stored if f"/{MARKS}/" in k]
    assert len(marks) == 2 and all(k.endswith("-chunk") for k in marks)
    manifest = ResultsLocation(base).read_manifest()
    assert sorted(e["point"] for e in manifest) == list(range(6))


def test_a_chunk_started_twice_on_s3_runs_no_point_the_second_time(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.engine import execute

    execute.task_location.cache_clear()
    base = f"s3://{BUCKET}/prefix/twice"
    call = TaskCall(
        campaign_id="c1",
        step="write",
        kind="run",
        target="tests.orchestrator.results.workloads:write_data",
        point=0,
        attempt=1,
        results_url=base,
        parameters={"x": 0},
        pass_params=("x",),
        pass_ctx=True,
    )
    chunk = ChunkCall("write-c1-0-1-chunk", "token", [call])
    assert [o.ok for o in execute_chunk(chunk, [{}])] == [True]
    with pytest.raises(ChunkStartedBefore):
        execute_chunk(chunk, [{}])
