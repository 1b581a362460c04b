"""Results on the cluster's file system (`cluster:///…`: its Lustre in production), on the
real local SLURM: tasks on SLURM workers and batch jobs write their outputs in place; the
service reads the manifest and the files over SFTP on the head node (sshfs, the same key and
verified host keys as the SSH transport), never through a local path."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.files import forget_filesystems
from cluster.slurm.compute import SlurmCompute
from orchestrator.results import ResultsLocation, on_the_cluster
from orchestrator.service import Service
from orchestrator.settings import Settings
from tests.conftest import fast_engine
from tests.fixtures.slurm import cluster_settings
from tests.helpers import spec_doc
from tests.orchestrator.engine.test_slurm_campaigns import run

pytestmark = pytest.mark.slurm


@pytest.fixture
def lustre_service(slurm_env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    engine = fast_engine()
    engine.batch_poll_interval = 0.5
    svc = Service(
        Settings(
            data_dir=tmp_path / "data",
            results_url=f"cluster://{tmp_path / 'lustre'}",
            engine=engine,
            cluster=cluster_settings(slurm_env),
        )
    )
    yield svc
    svc.close()
    on_the_cluster.use(Settings().cluster)  # the next tests: the default (local) cluster
    forget_filesystems()


def test_tasks_write_on_the_cluster_and_the_service_reads_over_sftp(
    slurm: SlurmCompute, lustre_service: Service, tmp_path: Path
) -> None:
    script = "echo '{\"x\": {{ x }}}' > result.json\nhead -c 3000 /dev/urandom > field.bin\n"
    doc = spec_doc(
        "on-lustre",
        {
            "write": {"run": "tests.workloads:write_where", "foreach": True},
            "sim": {"batch": {"script": script}, "foreach": True},
        },
        x=[1, 2],
    )
    campaign_id, state = run(lustre_service, slurm, doc)
    assert state == "succeeded", lustre_service.status(campaign_id)

    record = lustre_service.store.get_campaign(campaign_id)
    folder = tmp_path / "lustre" / f"on-lustre-{campaign_id}"
    location = ResultsLocation(record.results_url)
    assert type(location.fs).__name__ == "SSHFileSystem"  # read over SFTP, not locally
    manifest = {(e["step"], e["point"]): e for e in location.read_manifest()}
    assert set(manifest) == {("write", 0), ("write", 1), ("sim", 0), ("sim", 1)}

    for point, x in enumerate([1, 2]):
        written = folder / "write" / f"{point:06d}" / "where.txt"
        value, job = written.read_text().split()
        assert value == str(x) and job.isdigit()  # written by the task, in its SLURM job
        outputs = {o["path"]: o for o in manifest[("write", point)]["outputs"]}
        assert outputs["where.txt"]["digest"] == _digest(written)
        assert outputs["where.txt"]["url"] == f"cluster://{written}"

        field = folder / "sim" / f"{point:06d}" / "field.bin"  # the batch job's own folder
        outputs = {o["path"]: o for o in manifest[("sim", point)]["outputs"]}
        assert outputs["field.bin"]["size"] == 3000 == field.stat().st_size
        assert outputs["field.bin"]["digest"] == _digest(field)
        assert manifest[("sim", point)]["result"] == {"x": x}
        # and the service reads the files themselves over SFTP too
        assert location.read_bytes(f"sim/{point:06d}/field.bin") == field.read_bytes()


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_batch_outputs_are_listed_once_the_head_node_answers_again(
    slurm: SlurmCompute,
    lustre_service: Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing the outputs of ended batch jobs fails once (the head node unreachable at that
    instant): the tasks stay running and are listed at the next poll, nothing is lost."""
    from cluster.errors import HostUnreachable

    real = slurm.batch.describe_dirs
    calls: list[int] = []

    def flaky(folders: list[str]) -> Any:
        calls.append(len(folders))
        if len(calls) == 1:
            raise HostUnreachable("cannot reach the head node (injected)")
        return real(folders)

    monkeypatch.setattr(slurm.batch, "describe_dirs", flaky)
    script = "head -c 100 /dev/urandom > data.bin\n"
    doc = spec_doc("listed-later", {"sim": {"batch": {"script": script}, "foreach": True}}, x=[1])
    campaign_id, state = run(lustre_service, slurm, doc)
    assert state == "succeeded"
    assert len(calls) >= 2  # failed, then listed
    [entry] = ResultsLocation(
        lustre_service.store.get_campaign(campaign_id).results_url
    ).read_manifest()
    [output] = [o for o in entry["outputs"] if o["path"] == "data.bin"]
    folder = tmp_path / "lustre" / f"listed-later-{campaign_id}"
    assert output["digest"] == _digest(folder / "sim" / "000000" / "data.bin")


def test_a_retried_task_on_the_cluster_lists_only_its_succeeded_attempt(
    slurm: SlurmCompute, lustre_service: Service, tmp_path: Path
) -> None:
    """A run step on a SLURM worker and a batch step (a job array), each failing its first
    attempt after writing a file: the attempt that succeeds lists only its own files."""
    script = (
        "echo {{ attempt }} > attempt-{{ attempt }}.txt\n"
        "if [ {{ attempt }} = 1 ]; then exit 3; fi\n"
        "echo '{\"x\": {{ x }}}' > result.json\n"
    )
    doc = spec_doc(
        "retried-on-lustre",
        {
            "w": {"run": "tests.workloads:fails_first_attempt", "foreach": True, "retries": 1},
            "sim": {"batch": {"script": script}, "foreach": True, "retries": 1},
        },
        x=[1, 2],
    )
    campaign_id, state = run(lustre_service, slurm, doc)
    assert state == "succeeded", lustre_service.status(campaign_id)
    location = ResultsLocation(lustre_service.store.get_campaign(campaign_id).results_url)
    manifest = {(e["step"], e["point"]): e for e in location.read_manifest()}
    folder = tmp_path / "lustre" / f"retried-on-lustre-{campaign_id}"
    for step, own in (("w", {"attempt-2.txt"}), ("sim", {"attempt-2.txt", "result.json"})):
        for point in (0, 1):
            entry = manifest[(step, point)]
            assert entry["attempt"] == 2
            assert {o["path"] for o in entry["outputs"]} == own, entry
            assert {p.name for p in (folder / step / f"{point:06d}").iterdir()} == own
            kept = folder / step / f"{point:06d}.before-attempt-2"
            assert "attempt-1.txt" in {p.name for p in kept.iterdir()}
