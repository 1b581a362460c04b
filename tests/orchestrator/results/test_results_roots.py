"""A project keeps results only under the roots the service's settings allow for it: a spec
pointing anywhere else is refused at submit, naming `results`."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.results.roots import is_under, normalise
from orchestrator.service import Service
from orchestrator.settings import Settings
from orchestrator.spec import parse_document


def spec(results: str) -> object:
    return parse_document({"name": "r", "steps": {"s": {"command": "true"}}, "results": results})


@pytest.fixture
def roots_service(tmp_path: Path) -> Service:
    settings = Settings(
        data_dir=tmp_path / "data",
        results_url=str(tmp_path / "results"),
        results_roots=[
            str(tmp_path / "results"),
            "s3://shared/{vlab}/{project}",
            "cluster:///lustre/{vlab}/{project}",
        ],
    )
    service = Service(settings)
    yield service
    service.close()


@pytest.mark.parametrize(
    "results",
    [
        "file:///etc",
        "/etc/cron.d",
        "../../../../tmp",
        "s3://shared/other/project",
        "s3://shared/v1/p1/../../other/project",
        "s3://other-bucket/v1/p1",
        "s3a://shared/v1/p1",
        "cluster:///home/otheruser",
        "cluster:///lustre/v1/p1-other",
        "cluster:///lustre/v1/p1/../../v2/p2",
    ],
)
def test_a_location_outside_the_roots_is_refused(roots_service: Service, results: str) -> None:
    with pytest.raises(SpecError) as info:
        roots_service.submit(spec(results), project="v1/p1")  # type: ignore[arg-type]
    assert [i.path for i in info.value.issues] == ["results"]
    assert "setting results_roots" in str(info.value)
    assert roots_service.list_campaigns() == []


def test_locations_under_the_roots_are_accepted(roots_service: Service, tmp_path: Path) -> None:
    for results in [
        str(tmp_path / "results"),
        str(tmp_path / "results" / "mine"),
        f"file://{tmp_path}/results/x/../y",
        "s3://shared/v1/p1",
        "s3://shared/v1/p1/campaigns",
        "cluster:///lustre/v1/p1/runs",
    ]:
        roots_service.submit(spec(results), project="v1/p1")  # type: ignore[arg-type]
    assert len(roots_service.list_campaigns()) == 6


def test_by_default_only_the_results_url_is_allowed(tmp_path: Path) -> None:
    service = Service(Settings(data_dir=tmp_path / "data", results_url=str(tmp_path / "res")))
    try:
        service.submit(spec(str(tmp_path / "res" / "a")))  # type: ignore[arg-type]
        service.submit(parse_document({"name": "d", "steps": {"s": {"command": "true"}}}))
        with pytest.raises(SpecError, match="results"):
            service.submit(spec(str(tmp_path / "elsewhere")))  # type: ignore[arg-type]
    finally:
        service.close()


def test_a_symbolic_link_out_of_a_root_is_followed(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "escape").symlink_to("/etc")
    assert not is_under(str(tmp_path / "root" / "escape"), [str(tmp_path / "root")])


def test_normalise() -> None:
    assert normalise("s3://b/x/../y/") == ("s3", "b", "/y")
    assert normalise("s3://b/../../..") == ("s3", "b", "/")
    assert normalise("cluster:///a//b/./c") == ("cluster", "", "/a/b/c")
    assert normalise("file:///tmp/../etc").path == "/etc"
