"""The Python builder makes the same CampaignSpec, with the same checks, as a spec file."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.builder import Campaign, callable_path, grid_range, linspace
from orchestrator.errors import SpecError
from orchestrator.spec import load_text
from tests import workloads

W = "tests.workloads"

YAML = f"""
name: fi-curve
parameters:
  amplitude: {{linspace: [0.0, 0.5, 11]}}
  gnabar: [0.10, 0.12, 0.14]
  seed: {{range: [0, 4]}}
sweep: product
steps:
  simulate:
    run: {W}:fi_simulate
    foreach: true
    with: {{duration_ms: 300}}
    resources: {{cores: 1, memory: 1GiB, walltime: 10m}}
    retries: 2
    timeout: 5m
  features:
    run: {W}:fi_features
    foreach: true
    needs: [simulate]
  summary:
    run: {W}:fi_summary
    needs: [features]
results: ./results
"""


def fi_campaign() -> Campaign:
    return (
        Campaign("fi-curve", results="./results")
        .parameters(
            amplitude=linspace(0.0, 0.5, 11), gnabar=[0.10, 0.12, 0.14], seed=grid_range(0, 4)
        )
        .step(
            "simulate",
            run=workloads.fi_simulate,
            foreach=True,
            with_={"duration_ms": 300},
            resources={"cores": 1, "memory": "1GiB", "walltime": "10m"},
            retries=2,
            timeout="5m",
        )
        .step("features", run=workloads.fi_features, foreach=True, needs=["simulate"])
        .step("summary", run=workloads.fi_summary, needs=["features"])
    )


def test_builder_equals_yaml() -> None:
    built = fi_campaign().spec()
    from_yaml = load_text(YAML)
    assert built == from_yaml
    assert built.to_document() == from_yaml.to_document()
    assert built.steps["simulate"].resources.memory == 1024**3
    assert built.steps["simulate"].timeout == 300.0
    assert len(built.make_sweep()) == 11 * 3 * 4


def test_builder_document_holds_callable_paths() -> None:
    document = fi_campaign().document()
    assert document["steps"]["simulate"]["run"] == f"{W}:fi_simulate"
    assert document["steps"]["simulate"]["with"] == {"duration_ms": 300}
    assert document["parameters"]["seed"] == {"range": [0, 4, 1]}
    assert document["parameters"]["amplitude"] == {"linspace": [0.0, 0.5, 11]}
    assert "results" in document and document["results"] == "./results"


def test_builder_zip_and_command_equal_yaml() -> None:
    built = (
        Campaign("zipped", sweep="zip")
        .parameters(x=[1, 2, 3], y=grid_range(0.0, 1.5, 0.5))
        .step("sim", command="sim --x {{x}} --y {{y}} --out {{output_dir}}", foreach=True)
        .step("total", run=f"{W}:noop", needs=["sim"])
        .spec()
    )
    from_yaml = load_text(
        f"""
name: zipped
sweep: zip
parameters:
  x: [1, 2, 3]
  y: {{range: [0.0, 1.5, 0.5]}}
steps:
  sim:
    command: "sim --x {{{{x}}}} --y {{{{y}}}} --out {{{{output_dir}}}}"
    foreach: true
  total:
    run: {W}:noop
    needs: [sim]
"""
    )
    assert built == from_yaml
    assert list(built.make_sweep().iter_points()) == [
        {"x": 1, "y": 0.0},
        {"x": 2, "y": 0.5},
        {"x": 3, "y": 1.0},
    ]
    assert "results" not in built.to_document()


def test_function_object_becomes_module_qualname() -> None:
    assert callable_path(workloads.square) == f"{W}:square"
    assert callable_path(workloads.Steps.double) == f"{W}:Steps.double"
    spec = (
        Campaign("q")
        .parameters(x=[1.0, 2.0])
        .step("a", run=workloads.square, foreach=True)
        .step("b", run=workloads.Steps.double, foreach=True)
        .spec()
    )
    assert spec.steps["a"].run == f"{W}:square"
    assert spec.steps["b"].run == f"{W}:Steps.double"


def test_string_run_is_kept_verbatim() -> None:
    spec = Campaign("s").step("a", run=f"{W}:noop").spec()
    assert spec.steps["a"].run == f"{W}:noop"


def _assert_rejected(func: Any, *fragments: str) -> None:
    with pytest.raises(SpecError) as info:
        Campaign("bad").parameters(x=[1]).step("s", run=func, foreach=True)
    (issue,) = info.value.issues
    assert issue.path == "steps.s.run"
    assert "not importable by workers" in issue.message
    for fragment in fragments:
        assert fragment in issue.message


def test_lambda_is_rejected() -> None:
    _assert_rejected(lambda x: x, "inside a function", "<lambda>")


def test_local_function_is_rejected() -> None:
    def local(x: int) -> int:
        return x

    _assert_rejected(local, "inside a function", "local")
    with pytest.raises(SpecError):
        callable_path(local)


def test_function_from_main_is_rejected() -> None:
    def main_function(x: int) -> int:
        return x

    main_function.__module__ = "__main__"
    main_function.__qualname__ = "main_function"
    _assert_rejected(main_function, "__main__")


def test_builder_runs_the_same_checks_as_a_spec_file() -> None:
    campaign = (
        Campaign("checked")
        .parameters(x=[1, 2])
        .step("a", run=workloads.square, foreach=True, with_={"factor": 2})
        .step("b", run=workloads.noop, needs=["missing"])
    )
    with pytest.raises(SpecError) as info:
        campaign.spec()
    assert [(i.path, i.message) for i in info.value.issues] == [
        ("steps.b.needs.0", "unknown step 'missing'")
    ]
    # the graph fixed, the keyword check of step a shows
    campaign.step("b", run=workloads.noop, needs=["a"])
    with pytest.raises(SpecError) as info:
        campaign.spec()
    (issue,) = info.value.issues
    assert issue.path == "steps.a.run"
    assert f"{W}:square does not accept factor" in issue.message


def test_builder_field_errors_name_the_field() -> None:
    campaign = Campaign("mem").step("s", run=workloads.noop, resources={"memory": "lots"})
    with pytest.raises(SpecError) as info:
        campaign.spec()
    (issue,) = info.value.issues
    assert issue.path == "steps.s.resources.memory"
    assert "'lots' is not a size" in issue.message


def test_builder_invalid_name() -> None:
    with pytest.raises(SpecError) as info:
        Campaign("has space").step("s", run=workloads.noop).spec()
    assert [i.path for i in info.value.issues] == ["name"]
