"""`chunk` (points per Dask task): accepted on foreach run/command steps, refused elsewhere,
every bad value named by its field."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.builder import Campaign
from orchestrator.errors import SpecError
from orchestrator.spec import load_text, parse_document

W = "tests.workloads"


def document(**step: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "parameters": {"x": [1, 2, 3]},
        "steps": {"sq": {"run": f"{W}:square", "foreach": True, **step}},
    }


@pytest.mark.parametrize("value", [1, 7, "auto"])
def test_chunk_is_a_whole_number_or_auto(value: int | str) -> None:
    spec = parse_document(document(chunk=value))
    assert spec.steps["sq"].chunk == value
    assert spec.to_document()["steps"]["sq"]["chunk"] == value  # stored as written


def test_no_chunk_is_one_point_per_task() -> None:
    spec = parse_document(document())
    assert spec.steps["sq"].chunk is None
    assert "chunk" not in spec.to_document()["steps"]["sq"]


@pytest.mark.parametrize("value", [0, -3, "big", 2.0, 2.5, True, [2], {"n": 2}])
def test_bad_chunk_values_name_the_field(value: Any) -> None:
    with pytest.raises(SpecError) as info:
        parse_document(document(chunk=value))
    paths = [issue.path for issue in info.value.issues]
    assert paths == ["steps.sq.chunk"], info.value
    assert "whole number ≥ 1 or 'auto'" in str(info.value)


def test_a_step_without_foreach_is_not_chunked() -> None:
    with pytest.raises(SpecError) as info:
        parse_document(document(foreach=False, chunk=4))
    assert [i.path for i in info.value.issues] == ["steps.sq.chunk"]
    assert "only a foreach step" in str(info.value)


def test_a_batch_step_is_not_chunked() -> None:
    doc = document()
    doc["steps"]["sq"] = {"batch": {"script": "echo {{ x }}"}, "foreach": True, "chunk": 10}
    with pytest.raises(SpecError) as info:
        parse_document(doc)
    assert [i.path for i in info.value.issues] == ["steps.sq.chunk"]
    assert "job array" in str(info.value)


def test_a_command_step_is_chunked() -> None:
    doc = document()
    doc["steps"]["sq"] = {"command": "echo {{ x }}", "foreach": True, "chunk": "auto"}
    assert parse_document(doc).steps["sq"].chunk == "auto"


def test_builder_and_yaml_agree_on_chunk() -> None:
    built = (
        Campaign("t")
        .parameters(x=[1, 2, 3])
        .step("sq", run=f"{W}:square", foreach=True, chunk=50)
        .step("tot", run=f"{W}:total_of_squares", needs=["sq"])
        .spec()
    )
    from_yaml = load_text(
        f"""
name: t
parameters: {{x: [1, 2, 3]}}
steps:
  sq: {{run: "{W}:square", foreach: true, chunk: 50}}
  tot: {{run: "{W}:total_of_squares", needs: [sq]}}
"""
    )
    assert built == from_yaml
    with pytest.raises(SpecError) as info:
        Campaign("t").parameters(x=[1]).step("sq", run=f"{W}:square", foreach=True, chunk=0).spec()
    assert [i.path for i in info.value.issues] == ["steps.sq.chunk"]
