"""Campaign spec validation: every error names its field (SpecError.issues[i].path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.errors import SpecError
from orchestrator.spec import (
    CampaignSpec,
    load_file,
    load_text,
    parse_document,
    topological_order,
)
from orchestrator.sweep import LinspaceAxis, ListAxis, RangeAxis

W = "tests.workloads"

DESIGN_EXAMPLE = f"""
name: fi-curve                       # required; letters, digits, '-', '_'; ≤ 100 chars
parameters:                          # one axis per key; lazy
  amplitude: {{linspace: [0.0, 0.5, 11]}}
  gnabar: [0.10, 0.12, 0.14]
  seed: {{range: [0, 4]}}              # 0,1,2,3 (step optional: [start, stop, step])
sweep: product                       # product (default) | zip (axes of equal length)
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
    needs: [simulate]                # foreach→foreach: the same point's result
  summary:
    run: {W}:fi_summary
    needs: [features]                # foreach→single: the list of all points' results
results: ./results
"""


def doc(steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "t", **fields, "steps": steps}


def noop_step(**fields: Any) -> dict[str, Any]:
    return {"run": f"{W}:noop", **fields}


def issues(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        if isinstance(document, str):
            load_text(document)
        else:
            parse_document(document)
    found = [(issue.path, issue.message) for issue in info.value.issues]
    assert found, "a SpecError must carry at least one issue"
    # the exception's text lists every issue, path first
    for path, message in found:
        assert (f"{path}: {message}" if path else message) in str(info.value)
    return found


def single_issue(document: Any) -> tuple[str, str]:
    found = issues(document)
    assert len(found) == 1, found
    return found[0]


def assert_issue(document: Any, path: str, *fragments: str) -> None:
    got_path, message = single_issue(document)
    assert got_path == path, (got_path, message)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ---------------------------------------------------------------- happy path
def test_design_example_parses() -> None:
    spec = load_text(DESIGN_EXAMPLE)
    assert spec.name == "fi-curve"
    assert spec.sweep == "product"
    assert spec.results == "./results"
    assert spec.parameters == {
        "amplitude": LinspaceAxis(0.0, 0.5, 11),
        "gnabar": ListAxis((0.10, 0.12, 0.14)),
        "seed": RangeAxis(0, 4, 1),
    }
    assert len(spec.make_sweep()) == 11 * 3 * 4
    simulate = spec.steps["simulate"]
    assert simulate.kind == "run"
    assert simulate.run == f"{W}:fi_simulate"
    assert simulate.foreach is True
    assert simulate.with_ == {"duration_ms": 300}
    assert simulate.resources.cores == 1
    assert simulate.resources.memory == 1024**3
    assert simulate.resources.walltime == 600.0
    assert simulate.retries == 2
    assert simulate.timeout == 300.0
    assert spec.steps["features"].needs == ["simulate"]
    assert spec.steps["summary"].needs == ["features"]
    assert spec.steps["summary"].foreach is False
    assert topological_order(spec) == ["simulate", "features", "summary"]


def test_to_document_round_trips() -> None:
    spec = load_text(DESIGN_EXAMPLE)
    document = spec.to_document()
    assert document["steps"]["simulate"]["with"] == {"duration_ms": 300}
    assert document["parameters"]["amplitude"] == {"linspace": [0.0, 0.5, 11]}
    again = parse_document(document)
    assert again == spec
    assert again.to_document() == document
    # and through YAML and JSON text, as the store and the REST body carry it
    assert load_text(yaml.safe_dump(document)) == spec
    assert load_text(json.dumps(document)) == spec


def test_json_text_is_accepted() -> None:
    document = yaml.safe_load(DESIGN_EXAMPLE)
    text = json.dumps(document, indent=2)
    assert text.lstrip().startswith("{")
    assert load_text(text) == load_text(DESIGN_EXAMPLE)


def test_invalid_json_text_is_reported() -> None:
    path, message = single_issue('{"name": "t", "steps": ')
    assert path == ""
    assert "not valid YAML/JSON" in message


def test_topological_order_follows_needs_not_declaration_order() -> None:
    spec = parse_document(
        doc(
            {
                "summary": noop_step(needs=["features"]),
                "features": noop_step(needs=["simulate"]),
                "simulate": noop_step(),
                "other": noop_step(),
            }
        )
    )
    order = topological_order(spec)
    assert order.index("simulate") < order.index("features") < order.index("summary")
    assert sorted(order) == ["features", "other", "simulate", "summary"]


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load_file(path) == load_text(DESIGN_EXAMPLE)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SpecError) as info:
        load_file(missing)
    assert info.value.issues[0].path == ""
    assert "cannot read" in info.value.issues[0].message
    assert str(missing) in info.value.issues[0].message


# --------------------------------------------------------------------- graph
def test_two_step_cycle() -> None:
    document = doc({"a": noop_step(needs=["b"]), "b": noop_step(needs=["a"])})
    assert_issue(document, "steps.a.needs", "cycle", "a → b → a")


def test_longer_cycle() -> None:
    document = doc(
        {
            "a": noop_step(needs=["b"]),
            "b": noop_step(needs=["c"]),
            "c": noop_step(needs=["a"]),
            "d": noop_step(needs=["a"]),
        }
    )
    assert_issue(document, "steps.a.needs", "cycle", "a → b → c → a")


def test_cycle_reached_from_an_acyclic_step() -> None:
    document = doc(
        {
            "entry": noop_step(needs=["b"]),
            "b": noop_step(needs=["c"]),
            "c": noop_step(needs=["d"]),
            "d": noop_step(needs=["b"]),
        }
    )
    assert_issue(document, "steps.b.needs", "cycle", "b → c → d → b")


def test_unknown_need() -> None:
    document = doc({"a": noop_step(), "b": noop_step(needs=["a", "nope"])})
    assert_issue(document, "steps.b.needs.1", "unknown step 'nope'")


def test_self_need() -> None:
    assert_issue(doc({"a": noop_step(needs=["a"])}), "steps.a.needs.0", "cannot need itself")


def test_duplicate_need() -> None:
    document = doc({"a": noop_step(), "b": noop_step(needs=["a", "a"])})
    assert_issue(document, "steps.b.needs", "more than once")


def test_every_graph_issue_is_reported() -> None:
    document = doc({"a": noop_step(needs=["a"]), "b": noop_step(needs=["zz"])})
    assert sorted(issues(document)) == [
        ("steps.a.needs.0", "a step cannot need itself"),
        ("steps.b.needs.0", "unknown step 'zz'"),
    ]


# ---------------------------------------------------------------- step kinds
def test_step_with_two_kinds() -> None:
    document = doc({"s": {"run": f"{W}:noop", "command": "echo hi"}})
    assert_issue(document, "steps.s", "exactly one of run, command, batch", "run and command")


def test_step_with_no_kind() -> None:
    assert_issue(doc({"s": {"foreach": True}}), "steps.s", "exactly one of", "found none")


def test_run_not_of_module_function_form() -> None:
    assert_issue(doc({"s": {"run": "tests.workloads.noop"}}), "steps.s.run", "module:function")


def test_no_steps() -> None:
    path, _ = single_issue({"name": "t", "steps": {}})
    assert path == "steps"
    path, message = single_issue({"name": "t"})
    assert (path, message) == ("steps", "is required")


# ------------------------------------------------------- resources and limits
def test_bad_memory_size() -> None:
    document = doc({"simulate": noop_step(resources={"memory": "lots"})})
    assert_issue(document, "steps.simulate.resources.memory", "'lots' is not a size")


def test_zero_memory() -> None:
    document = doc({"simulate": noop_step(resources={"memory": 0})})
    assert_issue(document, "steps.simulate.resources.memory", "positive")


def test_bad_walltime() -> None:
    document = doc({"s": noop_step(resources={"walltime": "1:99:00"})})
    assert_issue(document, "steps.s.resources.walltime", "below 60")


def test_bad_timeout() -> None:
    assert_issue(doc({"s": noop_step(timeout="10x")}), "steps.s.timeout", "'10x' is not a duration")


def test_negative_timeout() -> None:
    assert_issue(doc({"s": noop_step(timeout=-5)}), "steps.s.timeout", "positive")


def test_blank_timeout_is_a_spec_error() -> None:
    # was a raw IndexError escaping pydantic (dask.parse_timedelta(''))
    assert_issue(doc({"s": noop_step(timeout="")}), "steps.s.timeout", "10m")


def test_blank_memory_is_a_spec_error() -> None:
    # dask.parse_bytes('') is 1: must not silently become one byte
    document = doc({"s": noop_step(resources={"memory": ""})})
    assert_issue(document, "steps.s.resources.memory", "1GiB")


def test_non_finite_timeout_is_a_spec_error() -> None:
    path, _ = single_issue(load_text_spec_with_timeout(".nan"))
    assert path == "steps.s.timeout"
    path, _ = single_issue(load_text_spec_with_timeout(".inf"))
    assert path == "steps.s.timeout"


def load_text_spec_with_timeout(value: str) -> str:
    return f"name: t\nsteps:\n  s:\n    command: 'true'\n    timeout: {value}\n"


def test_negative_retries() -> None:
    assert_issue(doc({"s": noop_step(retries=-1)}), "steps.s.retries", "greater than or equal to 0")


def test_zero_cores() -> None:
    document = doc({"s": noop_step(resources={"cores": 0})})
    assert_issue(document, "steps.s.resources.cores", "greater than or equal to 1")


def test_several_field_errors_are_all_reported() -> None:
    document = doc(
        {
            "a": noop_step(resources={"memory": "lots"}),
            "b": noop_step(retries=-1, timeout="10x"),
        }
    )
    assert sorted(path for path, _ in issues(document)) == [
        "steps.a.resources.memory",
        "steps.b.retries",
        "steps.b.timeout",
    ]


# --------------------------------------------------------------------- axes
def test_empty_list_axis() -> None:
    document = doc({"s": noop_step()}, parameters={"x": []})
    assert_issue(document, "parameters.x", "at least one value")


@pytest.mark.parametrize("args", [[5, 5], [5, 0], [0, 5, -1]])
def test_empty_range(args: list[int]) -> None:
    document = doc({"s": noop_step()}, parameters={"seed": {"range": args}})
    assert_issue(document, "parameters.seed", f"range {args} is empty")


def test_range_with_zero_step() -> None:
    document = doc({"s": noop_step()}, parameters={"seed": {"range": [0, 5, 0]}})
    assert_issue(document, "parameters.seed", "step must not be 0")


@pytest.mark.parametrize("n", [0, -1])
def test_linspace_with_no_points(n: int) -> None:
    document = doc({"s": noop_step()}, parameters={"amplitude": {"linspace": [0.0, 1.0, n]}})
    assert_issue(document, "parameters.amplitude", "linspace's n must be a whole number ≥ 1")


def test_linspace_with_wrong_arguments() -> None:
    document = doc({"s": noop_step()}, parameters={"amplitude": {"linspace": [0.0, 1.0]}})
    assert_issue(document, "parameters.amplitude", "linspace takes [start, stop, n]")


def test_unknown_axis_form() -> None:
    document = doc({"s": noop_step()}, parameters={"x": {"logspace": [0, 1, 3]}})
    assert_issue(document, "parameters.x", "an axis is a list of values")


def test_zip_of_unequal_axes() -> None:
    document = doc(
        {"s": noop_step(foreach=True)},
        parameters={"a": [1, 2, 3], "b": {"range": [0, 2]}},
        sweep="zip",
    )
    assert_issue(document, "sweep", "zip needs axes of equal length", "a=3", "b=2")


def test_zip_of_equal_axes() -> None:
    document = doc(
        {"s": noop_step(foreach=True)},
        parameters={"a": [1, 2, 3], "b": {"range": [0, 3]}, "c": {"linspace": [0, 1, 3]}},
        sweep="zip",
    )
    assert len(parse_document(document).make_sweep()) == 3


def test_unknown_sweep_mode() -> None:
    path, _ = single_issue(doc({"s": noop_step()}, sweep="grid"))
    assert path == "sweep"


def _huge_sweep_document(parameters: dict[str, Any]) -> dict[str, Any]:
    return doc({"s": {"command": "echo {{a}}", "foreach": True}}, parameters=parameters)


def test_billion_point_sweep_is_valid() -> None:
    spec = parse_document(_huge_sweep_document({"a": {"range": [0, 10**9]}}))
    assert len(spec.make_sweep()) == 10**9


def test_sweep_too_large_to_count_is_a_spec_error() -> None:
    axes = {name: {"range": [0, 100_000]} for name in "abcd"}  # 10**20 points
    with pytest.raises(SpecError) as info:
        spec = parse_document(_huge_sweep_document(axes))
        len(spec.make_sweep())
    assert info.value.issues
    assert all(i.path.startswith(("parameters", "sweep")) for i in info.value.issues)


def test_range_axis_too_large_to_count_is_a_spec_error() -> None:
    document = _huge_sweep_document({"a": {"range": [0, 10**20]}})
    with pytest.raises(SpecError) as info:
        parse_document(document)
    assert info.value.issues[0].path.startswith("parameters")


@pytest.mark.parametrize("name", ["ctx", "1x", "a-b"])
def test_invalid_parameter_name(name: str) -> None:
    document = doc({"s": noop_step()}, parameters={name: [1]})
    assert_issue(document, "parameters", "not a valid parameter name")


# ---------------------------------------------------------------- callables
def test_callable_in_missing_module() -> None:
    document = doc({"s": {"run": "no_such_module_xyz.sub:func"}})
    assert_issue(
        document,
        "steps.s.run",
        "cannot import 'no_such_module_xyz.sub:func'",
        "no module named 'no_such_module_xyz'",
    )


def test_callable_missing_attribute() -> None:
    document = doc({"s": {"run": f"{W}:does_not_exist"}})
    assert_issue(document, "steps.s.run", f"cannot import '{W}:does_not_exist'", "does_not_exist")


def test_callable_that_is_not_callable() -> None:
    document = doc({"s": {"run": f"{W}:annotations"}})  # the __future__ feature object
    assert_issue(document, "steps.s.run", "not callable")


def test_with_key_the_callable_does_not_accept() -> None:
    document = doc(
        {"s": {"run": f"{W}:square", "foreach": True, "with": {"factor": 2}}},
        parameters={"x": [1, 2]},
    )
    assert_issue(document, "steps.s.run", f"{W}:square does not accept factor")


def test_upstream_step_the_callable_does_not_accept() -> None:
    document = doc(
        {
            "first": noop_step(foreach=True),
            "second": {"run": f"{W}:square", "foreach": True, "needs": ["first"]},
        },
        parameters={"x": [1, 2]},
    )
    assert_issue(document, "steps.second.run", f"{W}:square does not accept first")


def test_required_parameter_the_callable_will_not_receive() -> None:
    # not foreach: the point's parameters are not offered
    document = doc({"s": {"run": f"{W}:square"}}, parameters={"x": [1, 2]})
    assert_issue(document, "steps.s.run", f"{W}:square requires x, which it will not receive")


def test_required_parameter_missing_from_the_sweep() -> None:
    document = doc({"s": {"run": f"{W}:fi_features", "foreach": True}}, parameters={"x": [1]})
    assert_issue(document, "steps.s.run", "requires amplitude, simulate")


def test_positional_only_parameters_are_rejected() -> None:
    document = doc({"s": {"run": f"{W}:positional_only", "foreach": True}}, parameters={"x": [1]})
    assert_issue(document, "steps.s.run", "positional-only parameters ['x']")


def test_var_keyword_callable_accepts_everything() -> None:
    document = doc(
        {
            "a": noop_step(foreach=True),
            "b": noop_step(foreach=True, needs=["a"], **{"with": {"k": 1, "z": "s"}}),
        },
        parameters={"x": [1, 2], "y": ["u"]},
    )
    spec = parse_document(document)
    assert spec.steps["b"].with_ == {"k": 1, "z": "s"}
    assert spec.steps["b"].needs == ["a"]


def test_ctx_keyword_is_allowed() -> None:
    document = doc({"s": {"run": f"{W}:write_file", "foreach": True}}, parameters={"x": [1, 2]})
    assert parse_document(document).steps["s"].run == f"{W}:write_file"


def test_keyword_only_parameters_are_fine() -> None:
    document = doc({"s": {"run": f"{W}:keyword_only", "foreach": True}}, parameters={"x": [1]})
    assert parse_document(document).steps["s"].run == f"{W}:keyword_only"


def test_dotted_qualname_is_importable() -> None:
    document = doc({"s": {"run": f"{W}:Steps.double", "foreach": True}}, parameters={"x": [1]})
    assert parse_document(document).steps["s"].run == f"{W}:Steps.double"


def test_with_key_clashing_with_a_parameter() -> None:
    document = doc(
        {"s": {"run": f"{W}:square", "foreach": True, "with": {"x": 3}}},
        parameters={"x": [1, 2]},
    )
    assert_issue(document, "steps.s.with", "['x']")


# ---------------------------------------------------------------- templates
def test_unknown_placeholder_in_command() -> None:
    document = doc(
        {"s": {"command": "run --x {{ x }} --n {{nope}} {{ also_bad }}", "foreach": True}},
        parameters={"x": [1]},
    )
    assert_issue(document, "steps.s.command", "unknown placeholder(s)", "also_bad, nope")


def test_known_placeholders_in_command() -> None:
    command = (
        "sim --x {{x}} --n {{ n }} --in {{ first }} --out {{output_dir}} "
        "{{point}} {{attempt}} {{campaign_id}} {{step}}"
    )
    document = doc(
        {
            "first": {"command": "true", "foreach": True},
            "s": {"command": command, "foreach": True, "needs": ["first"], "with": {"n": 3}},
        },
        parameters={"x": [1]},
    )
    assert parse_document(document).steps["s"].command == command


def test_parameter_placeholder_without_foreach_is_unknown() -> None:
    document = doc({"s": {"command": "echo {{x}}"}}, parameters={"x": [1]})
    assert_issue(document, "steps.s.command", "unknown placeholder(s) x")


def test_unknown_placeholder_in_batch_script() -> None:
    document = doc({"s": {"batch": {"script": "srun sim {{ missing }}"}}})
    assert_issue(document, "steps.s.batch.script", "unknown placeholder(s) missing")


# ---------------------------------------------------------- unknown fields
def test_misspelt_step_field() -> None:
    assert_issue(doc({"s": noop_step(foreech=True)}), "steps.s.foreech", "unknown field")


def test_misspelt_top_level_field() -> None:
    assert_issue(doc({"s": noop_step()}, paramaters={"x": [1]}), "paramaters", "unknown field")


def test_misspelt_resources_field() -> None:
    document = doc({"s": noop_step(resources={"mem": "1GiB"})})
    assert_issue(document, "steps.s.resources.mem", "unknown field")


# ---------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["fi curve", "a" * 101, "", "fi/curve", "é"])
def test_invalid_campaign_name(name: str) -> None:
    document = {"name": name, "steps": {"s": noop_step()}}
    assert_issue(document, "name", "pattern")


@pytest.mark.parametrize("name", ["a" * 100, "fi-curve_2", "X"])
def test_valid_campaign_name(name: str) -> None:
    assert parse_document({"name": name, "steps": {"s": noop_step()}}).name == name


def test_missing_name() -> None:
    assert single_issue({"steps": {"s": noop_step()}}) == ("name", "is required")


@pytest.mark.parametrize("step_name", ["ctx", "bad-name", "1st"])
def test_invalid_step_name(step_name: str) -> None:
    assert_issue(doc({step_name: noop_step()}), "steps", "not a valid step name")


# --------------------------------------------------------------- documents
@pytest.mark.parametrize(
    "text", ["name: [unclosed\nsteps: {", "name: t\n  steps:\n bad: indent\n\t- x", "a: b: c"]
)
def test_invalid_yaml_text(text: str) -> None:
    path, message = single_issue(text)
    assert path == ""
    assert "<spec> is not valid YAML/JSON" in message


def test_invalid_yaml_names_its_source() -> None:
    with pytest.raises(SpecError) as info:
        load_text("a: b: c", source="campaign.yaml")
    assert "campaign.yaml is not valid YAML/JSON" in info.value.issues[0].message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n"])
def test_empty_document(text: str) -> None:
    assert single_issue(text) == ("", "<spec> is empty")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string", "42"])
def test_document_that_is_not_a_mapping(text: str) -> None:
    path, message = single_issue(text)
    assert path == ""
    assert "mapping" in message


def test_parse_document_accepts_a_model() -> None:
    spec = load_text(DESIGN_EXAMPLE)
    assert isinstance(spec, CampaignSpec)
    assert parse_document(spec) is spec
