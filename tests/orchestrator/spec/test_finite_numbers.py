"""Numbers in a spec are finite: JSON cannot carry .inf or .nan, and neither may a spec —
wherever the number sits (axes, `with` values, extensions, explicit points)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.builder import Campaign
from orchestrator.errors import SpecError
from orchestrator.spec import load_text, parse_document
from orchestrator.spec.model import Extension

W = "tests.workloads"


def issue_paths(document: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        if isinstance(document, str):
            load_text(document)
        else:
            parse_document(document)
    return [issue.path for issue in info.value.issues]


def steps(**with_: Any) -> dict[str, Any]:
    return {"s": {"command": "echo {{ x }}", "foreach": True, "with": with_}}


def test_a_range_beyond_floats_is_a_spec_error_not_an_overflow() -> None:
    text = "name: t\nparameters:\n  x: {range: [0, 1.0e+400]}\nsteps:\n  s: {command: 'true'}\n"
    assert issue_paths(text) == ["parameters.x.range.1"]


def test_an_integer_range_beyond_floats_with_a_float_step_is_a_spec_error() -> None:
    document = {"name": "t", "parameters": {"x": {"range": [0, 10**400, 0.5]}}, "steps": steps()}
    assert issue_paths(document) == ["parameters.x.range.1"]


@pytest.mark.parametrize("args", [[0, 1e308, 1e-308], [-1e308, 1e308, 1e307]])
def test_a_range_whose_size_overflows_is_a_spec_error(args: list[float]) -> None:
    document = {"name": "t", "parameters": {"x": {"range": args}}, "steps": steps()}
    assert issue_paths(document) == ["parameters.x"]


def test_a_linspace_whose_spacing_overflows_is_a_spec_error() -> None:
    document = {"name": "t", "parameters": {"x": {"linspace": [-1e308, 1e308, 3]}}}
    assert issue_paths({**document, "steps": steps()}) == ["parameters.x"]


def test_infinite_linspace_end_is_refused_not_stored_as_null() -> None:
    text = "name: t\nparameters:\n  x: {linspace: [0, .inf, 3]}\nsteps:\n  s: {command: 'true'}\n"
    assert issue_paths(text) == ["parameters.x.linspace.1"]


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_non_finite_list_values_are_refused(value: str) -> None:
    text = f"name: t\nparameters:\n  x: [1, {value}]\nsteps:\n  s: {{command: 'true'}}\n"
    assert issue_paths(text) == ["parameters.x.1"]


def test_non_finite_with_values_are_refused_at_any_depth() -> None:
    document = {"name": "t", "parameters": {"x": [1]}, "steps": steps(k={"a": [1, float("nan")]})}
    assert issue_paths(document) == ["steps.s.with.k.a.1"]


def test_json_nan_and_infinity_tokens_are_refused() -> None:
    text = '{"name": "t", "parameters": {"x": [NaN, Infinity]}, "steps": {"s": {"run": "m:f"}}}'
    assert issue_paths(text) == ["parameters.x.0", "parameters.x.1"]


def test_non_finite_extension_values_are_refused() -> None:
    document = {
        "name": "t",
        "parameters": {"x": [1]},
        "steps": steps(),
        "extensions": [{"parameters": {"x": [float("inf")]}}],
    }
    assert issue_paths(document) == ["extensions.0.parameters.x.0"]


def test_non_finite_explicit_points_are_refused() -> None:
    block = Extension.from_points([{"x": float("nan")}]).model_dump(mode="python")
    document = {"name": "t", "parameters": {"x": [1]}, "steps": steps(), "extensions": [block]}
    assert issue_paths(document) == ["extensions.0.parameters.x.0"]


def test_the_builder_refuses_non_finite_values_too() -> None:
    campaign = Campaign("t").parameters(x=[1.0, float("inf")])
    campaign.step("s", command="echo {{ x }}", foreach=True)
    with pytest.raises(SpecError) as info:
        campaign.spec()
    assert [i.path for i in info.value.issues] == ["parameters.x.1"]


def test_a_model_built_directly_is_checked_as_well() -> None:
    from orchestrator.spec.model import CampaignSpec

    spec = CampaignSpec.model_validate(
        {"name": "t", "parameters": {"x": [1]}, "steps": steps(k=float("nan"))}
    )
    assert issue_paths(spec) == ["steps.s.with.k"]


def test_finite_numbers_are_fine() -> None:
    text = (
        "name: t\nparameters:\n  x: {linspace: [-1.0e+300, 1.0e+300, 3]}\n"
        "steps:\n  s: {command: 'true'}\n"
    )
    assert len(load_text(text).make_sweep()) == 3


def test_a_deeply_nested_document_is_a_spec_error() -> None:
    text = '{"name": "t", "steps": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert issue_paths(text) == [""]
