"""A campaign whose results are on the cluster's FSx for Lustre is exported to S3 by the
engine: after each step or at its end, followed to completion, recorded as events, and the
campaign fails, naming the export, when it fails.

FSx is the one part that cannot run here: moto does not implement data repository tasks, so
botocore's Stubber stands in for FSx behind `orchestrator.results.fsx.fsx_client` (our seam):
requests are still checked against the real FSx API model and replies parsed as boto3 would.
The cluster is local, so the "Lustre" mount is a folder of this machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cluster.local import LocalCompute
from cluster.settings import ClusterSettings
from orchestrator.kg.embedded import EmbeddedKnowledgeGraph
from orchestrator.kg.settings import embedded_path
from orchestrator.results import fsx as export
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.spec import parse_document
from tests.conftest import fast_engine
from tests.helpers import spec_doc

FS = "fs-0123456789abcdef0"


def fsx_task(task_id: str, lifecycle: str, paths: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "TaskId": task_id,
        "Lifecycle": lifecycle,
        "Type": "EXPORT_TO_REPOSITORY",
        "CreationTime": "2026-01-01T00:00:00Z",
        "FileSystemId": FS,
        "Paths": paths,
        **extra,
    }


class FakeFsx:
    """Hands out stubbed FSx clients, one per export, in the order the engine asks."""

    def __init__(self) -> None:
        self.stubbers: list[Stubber] = []
        self.clients: list[Any] = []

    def expect(self) -> Stubber:
        client = boto3.client(
            "fsx", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        stubber = Stubber(client)
        stubber.activate()
        self.clients.append(client)
        self.stubbers.append(stubber)
        return stubber

    def __call__(self) -> Any:
        if not self.clients:
            raise AssertionError("an FSx export the test did not expect")
        return self.clients.pop(0)


@pytest.fixture
def fake_fsx(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFsx]:
    fake = FakeFsx()
    monkeypatch.setattr(export, "fsx_client", fake)
    yield fake
    for stubber in fake.stubbers:
        stubber.assert_no_pending_responses()


def lustre_service(tmp_path: Path, after: str) -> Service:
    mount = tmp_path / "lustre"
    return Service(
        Settings(
            data_dir=tmp_path / "data",
            results_url=f"cluster://{mount}/campaigns",
            engine=fast_engine(),
            cluster=ClusterSettings.model_validate(
                {
                    "fsx": {
                        "file_system_id": FS,
                        "mount_dir": str(mount),
                        "export_after": after,
                        "poll_interval": 0.05,
                    }
                }
            ),
        )
    )


def expect_export(
    fake: FakeFsx,
    campaign_id: str,
    scope: str,
    path: str,
    *ends: dict[str, Any],
    generation: int = 0,
) -> None:
    stubber = fake.expect()
    task_id = f"task-{abs(hash(scope)) % 10**17:017d}"
    stubber.add_response(
        "create_data_repository_task",
        {"DataRepositoryTask": fsx_task(task_id, "PENDING", [path])},
        {
            "Type": "EXPORT_TO_REPOSITORY",
            "FileSystemId": FS,
            "Paths": [path],
            "Report": {"Enabled": False},
            "ClientRequestToken": export.request_token(campaign_id, scope, generation),
        },
    )
    stubber.add_response(
        "describe_data_repository_tasks",
        {"DataRepositoryTasks": [fsx_task(task_id, "EXECUTING", [path])]},
        {"TaskIds": ANY},
    )
    for end in ends:
        stubber.add_response(
            "describe_data_repository_tasks",
            {"DataRepositoryTasks": [fsx_task(task_id, **end, paths=[path])]},
            {"TaskIds": ANY},
        )


def submit(service: Service, steps: dict[str, Any]) -> str:
    doc = spec_doc("exported", steps, x=[1, 2, 3])
    return service.submit(parse_document(doc), import_paths=[])


def expect_repositories(fake: FakeFsx) -> None:
    """FSx's data repository associations, read when a campaign on Lustre starts: the
    mount's `campaigns` folder is exported to `s3://scratch/lab/p1/`."""
    fake.expect().add_response(
        "describe_data_repository_associations",
        {
            "Associations": [
                {
                    "AssociationId": "dra-0123456789abcdef0",
                    "FileSystemId": FS,
                    "Lifecycle": "AVAILABLE",
                    "FileSystemPath": "/campaigns",
                    "DataRepositoryPath": "s3://scratch/lab/p1/",
                },
                {
                    "AssociationId": "dra-0123456789abcdef1",
                    "FileSystemId": FS,
                    "Lifecycle": "AVAILABLE",
                    "FileSystemPath": "/project",
                    "DataRepositoryPath": "s3://project-data",
                },
            ]
        },
        {"Filters": [{"Name": "file-system-id", "Values": [FS]}]},
    )


def writing_campaign(tmp_path: Path, after: str, fake: FakeFsx) -> tuple[Service, str, str]:
    """A service exporting `after` each step or the campaign, a submitted campaign whose
    tasks write a file each, and its folder relative to the file system's mount."""
    expect_repositories(fake)
    service = lustre_service(tmp_path, after)
    campaign_id = submit(service, {"w": {"run": "tests.workloads:write_file", "foreach": True}})
    return service, campaign_id, f"campaigns/exported-{campaign_id}"


def exports(service: Service, campaign_id: str) -> list[tuple[str | None, str, str]]:
    return [
        (e.step, str(e.state), e.message or "")
        for e in service.store.events(campaign_id, kind="export")
    ]


DONE = {
    "lifecycle": "SUCCEEDED",
    "Status": {"TotalCount": 7, "SucceededCount": 7, "FailedCount": 0},
}


def test_the_campaign_folder_is_exported_at_its_end(
    tmp_path: Path, compute: LocalCompute, fake_fsx: FakeFsx
) -> None:
    service, campaign_id, folder = writing_campaign(tmp_path, "campaign", fake_fsx)
    expect_export(fake_fsx, campaign_id, "campaign", folder, DONE)

    assert service.run(campaign_id, compute) == "succeeded"
    assert [(s, state) for s, state, _ in exports(service, campaign_id)] == [
        (None, "started"),
        (None, "succeeded"),
    ]
    assert "7 of 7 files exported to S3" in exports(service, campaign_id)[1][2]
    # the manifest was complete on Lustre before the export started
    manifest = tmp_path / "lustre" / folder / "manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(entries) == 3
    # each file is listed where the tasks wrote it, and where the export puts it on S3
    for entry in entries:
        where = f"w/{entry['point']:06d}/value.txt"
        [output] = [o for o in entry["outputs"] if o["path"] == "value.txt"]
        assert output["url"] == f"cluster://{tmp_path / 'lustre' / folder / where}"
        assert output["exported_url"] == f"s3://scratch/lab/p1/exported-{campaign_id}/{where}"
    # and the knowledge graph points at the S3 copy, which outlives the cluster
    service.registrar().close(drain=30)
    graph = EmbeddedKnowledgeGraph(embedded_path(service.settings.kg, service.settings.data_dir))
    rows = graph.query(
        'SELECT ?url WHERE { ?f a wf:Output ; schema:name "value.txt" ; schema:contentUrl ?url }'
    )
    assert sorted(r["url"] for r in rows) == [
        f"s3://scratch/lab/p1/exported-{campaign_id}/w/{p:06d}/value.txt" for p in range(3)
    ]
    graph.close()
    service.close()


def test_each_step_is_exported_as_it_ends_then_the_campaign(
    tmp_path: Path, compute: LocalCompute, fake_fsx: FakeFsx
) -> None:
    service, campaign_id, folder = writing_campaign(tmp_path, "step", fake_fsx)
    expect_export(fake_fsx, campaign_id, "w", f"{folder}/w", DONE)
    expect_export(fake_fsx, campaign_id, "campaign", folder, DONE)

    assert service.run(campaign_id, compute) == "succeeded"
    events = exports(service, campaign_id)
    assert [(s, state) for s, state, _ in events if s == "w"] == [
        ("w", "started"),
        ("w", "succeeded"),
    ]
    assert [state for s, state, _ in events if s is None] == ["started", "succeeded"]
    service.close()


def test_a_failed_export_fails_the_campaign_and_says_why(
    tmp_path: Path, compute: LocalCompute, fake_fsx: FakeFsx
) -> None:
    service, campaign_id, folder = writing_campaign(tmp_path, "campaign", fake_fsx)
    failed = {
        "lifecycle": "FAILED",
        "FailureDetails": {"Message": "the data repository association is gone"},
        "Status": {"TotalCount": 7, "SucceededCount": 2, "FailedCount": 5},
    }
    expect_export(fake_fsx, campaign_id, "campaign", folder, failed)

    assert service.run(campaign_id, compute) == "failed"
    message = service.status(campaign_id)["message"]
    assert message.startswith("export to S3 failed:")
    assert "the data repository association is gone" in message
    assert [state for _, state, _ in exports(service, campaign_id)] == ["started", "failed"]
    # the tasks themselves succeeded: their results stay, only the export is to redo
    assert {t.state for t in service.store.list_tasks(campaign_id, step="w")} == {"succeeded"}

    # restart: nothing runs again, and the export is a new one (a new request token)
    service.restart(campaign_id)
    expect_repositories(fake_fsx)
    expect_export(fake_fsx, campaign_id, "campaign", folder, DONE, generation=1)
    assert service.run(campaign_id, compute) == "succeeded"
    assert [state for _, state, _ in exports(service, campaign_id)][2:] == ["started", "succeeded"]
    service.close()


def test_results_outside_the_lustre_mount_are_not_exported(
    tmp_path: Path, compute: LocalCompute, fake_fsx: FakeFsx
) -> None:
    service = lustre_service(tmp_path, "campaign")
    service.settings.results_roots = [service.settings.results_url, str(tmp_path / "plain")]
    doc = spec_doc(
        "elsewhere", {"w": {"run": "tests.workloads:write_file", "foreach": True}}, x=[1]
    )
    doc["results"] = str(tmp_path / "plain")
    campaign_id = service.submit(parse_document(doc), import_paths=[])
    assert service.run(campaign_id, compute) == "succeeded"  # FakeFsx would raise if asked
    assert exports(service, campaign_id) == []
    service.close()


def test_the_next_export_of_a_scope_gets_a_new_request_token() -> None:
    assert export.request_token("c1", "campaign", 0) == export.request_token("c1", "campaign", 0)
    assert export.request_token("c1", "campaign", 0) != export.request_token("c1", "campaign", 1)
    assert export.request_token("c1", "w", 0) != export.request_token("c1", "campaign", 0)
    assert len(export.request_token("c" * 200, "s" * 200, 10**9)) <= 63
