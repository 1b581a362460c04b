"""Results on the cluster's own file system (`cluster:///…`, e.g. its Lustre): written in
place by the tasks; read by the service. Here the cluster is local (this machine); the SLURM
variant, read over SFTP, is in tests/orchestrator/results/test_cluster_results_slurm.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cluster.local import LocalCompute
from orchestrator.errors import ResultsError, SpecError
from orchestrator.results import ResultsLocation
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.helpers import spec_doc


def test_a_cluster_path_on_a_local_cluster_is_written_in_place(
    service: Service, compute: LocalCompute, tmp_path: Path
) -> None:
    where = tmp_path / "lustre" / "scratch"
    doc = spec_doc(
        "in-place", {"w": {"run": "tests.workloads:write_where", "foreach": True}}, x=[1, 2]
    )
    doc["results"] = f"cluster://{where}"
    # the cluster's file system is a results root of the service, as in production
    service.settings.results_roots = [service.settings.results_url, f"cluster://{where.parent}"]
    campaign_id = service.submit(parse_document(doc), import_paths=[])
    assert service.run(campaign_id, compute) == "succeeded"

    record = service.store.get_campaign(campaign_id)
    assert record.results_url == f"cluster://{where}/in-place-{campaign_id}"
    folder = where / f"in-place-{campaign_id}"
    manifest = ResultsLocation(record.results_url).read_manifest()
    assert sorted(e["point"] for e in manifest) == [0, 1]
    for entry in manifest:
        [output] = entry["outputs"]
        written = folder / "w" / f"{entry['point']:06d}" / "where.txt"
        assert written.read_text().startswith(f"{entry['parameters']['x']} ")
        assert output["url"] == f"cluster://{folder}/w/{entry['point']:06d}/where.txt"
        assert output["digest"] == "sha256:" + hashlib.sha256(written.read_bytes()).hexdigest()
        assert output["size"] == written.stat().st_size


@pytest.mark.parametrize(
    ("results", "says"),
    [
        ("cluster://lustre/x", "a cluster path is absolute"),
        ("ftp://host/x", "not ftp://"),
        ("s3:///prefix", "name the bucket"),
        ("  ", "must not be empty"),
    ],
)
def test_a_bad_results_location_is_refused_naming_the_field(results: str, says: str) -> None:
    doc = spec_doc("bad", {"a": {"run": "tests.workloads:noop"}})
    doc["results"] = results
    with pytest.raises(SpecError) as caught:
        parse_document(doc)
    assert "results" in str(caught.value) and says in str(caught.value)


def test_a_relative_cluster_url_is_refused_where_it_is_opened() -> None:
    with pytest.raises(ResultsError, match="absolute"):
        ResultsLocation("cluster://relative/path")
