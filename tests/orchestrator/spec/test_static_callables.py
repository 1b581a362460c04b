"""Callables are checked from their source, never by running their module: validating a
spec cannot print, exit or otherwise act in the validating process (the API, the CLI)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.execute import TaskCall, execute_task
from orchestrator.engine.plan import compile_plan
from orchestrator.errors import SpecError
from orchestrator.spec import add_import_paths, parse_document


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for throwaway modules; every module they define is forgotten after."""
    folder = tmp_path / "mods"
    folder.mkdir()
    before = set(sys.modules)
    add_import_paths([str(folder)])
    yield folder
    sys.path.remove(str(folder))
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def trap(folder: Path, marker: str) -> str:
    """Module code that leaves a marker file if it ever runs."""
    return f"open({str(folder / marker)!r}, 'w').close()\n"


def spec(run: str, foreach: bool = True, **fields: Any) -> dict[str, Any]:
    step = {"run": run, "foreach": foreach, **fields}
    return {"name": "t", "parameters": {"x": [1, 2]}, "steps": {"s": step}}


def issue(document: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(SpecError) as info:
        parse_document(document)
    assert len(info.value.issues) == 1, info.value.issues
    return info.value.issues[0].path, info.value.issues[0].message


def test_validation_does_not_run_the_module(modules: Path) -> None:
    write(modules, "trapped.py", trap(modules, "ran") + "def f(x, y):\n    return x\n")
    assert issue(spec("trapped:f", **{"with": {"y": 1, "z": 1}})) == (
        "steps.s.run",
        "trapped:f does not accept z (add them or **kwargs)",
    )
    assert issue(spec("trapped:f")) == (
        "steps.s.run",
        "trapped:f requires y, which it will not receive",
    )
    assert parse_document(spec("trapped:f", **{"with": {"y": 1}}))
    assert not (modules / "ran").exists()
    assert "trapped" not in sys.modules


def test_a_parent_package_is_not_run_either(modules: Path) -> None:
    write(modules, "pkg/__init__.py", trap(modules, "init-ran"))
    write(modules, "pkg/sub/__init__.py", trap(modules, "sub-ran"))
    write(modules, "pkg/sub/mod.py", "async def f(x, *, ctx=None):\n    return x\n")
    parse_document(spec("pkg.sub.mod:f"))
    path, message = issue(spec("pkg.sub.nope:f"))
    assert (path, "no module named 'pkg.sub.nope'") == (path, message.split(": ", 1)[1])
    assert not (modules / "init-ran").exists() and not (modules / "sub-ran").exists()


def test_the_zen_of_python_is_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    sys.modules.pop("this", None)
    assert issue(spec("this:s")) == (
        "steps.s.run",
        "cannot import 'this:s': this:s is not callable",
    )
    assert "Beautiful is better" not in capsys.readouterr().out
    assert "this" not in sys.modules


def test_a_module_that_exits_does_not_exit_the_validator() -> None:
    sys.modules.pop("lib2to3.__main__", None)
    parse_document(spec("lib2to3.__main__:main", foreach=False))  # imported there: accepted
    assert "lib2to3.__main__" not in sys.modules


class _ExitingFinder:
    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "exiting_finder_module":
            raise SystemExit(3)


def test_system_exit_from_the_import_machinery_is_a_spec_error() -> None:
    finder = _ExitingFinder()
    sys.meta_path.insert(0, finder)
    try:
        path, message = issue(spec("exiting_finder_module:f"))
    finally:
        sys.meta_path.remove(finder)
    assert path == "steps.s.run"
    assert "SystemExit" in message


def test_what_the_source_states_plainly_is_checked(modules: Path) -> None:
    write(
        modules,
        "shapes.py",
        """
        import functools
        from os import path as imported

        CONSTANT = [1, 2]
        as_lambda = lambda x, k: x  # noqa: E731

        class Model:
            def __init__(self, x):
                self.x = x

            @classmethod
            def build(cls, x, size):
                return cls(x)

        @functools.lru_cache
        def decorated(x, anything):
            return x
        """,
    )
    assert (
        issue(spec("shapes:CONSTANT"))[1]
        == "cannot import 'shapes:CONSTANT': shapes:CONSTANT is not callable"
    )
    assert "requires k" in issue(spec("shapes:as_lambda"))[1]
    assert parse_document(spec("shapes:Model"))
    assert "requires size" in issue(spec("shapes:Model.build"))[1]
    assert "has no attribute 'nope'" in issue(spec("shapes:Model.nope"))[1]
    assert "has no attribute 'absent'" in issue(spec("shapes:absent"))[1]
    # not plain defs: accepted when present, the worker finds out
    assert parse_document(spec("shapes:decorated"))
    assert parse_document(spec("shapes:imported"))
    assert "shapes" not in sys.modules


def test_a_compiled_module_is_only_checked_to_exist() -> None:
    assert parse_document(spec("math:sqrt", foreach=False))
    assert "no module named 'no_such_compiled'" in issue(spec("no_such_compiled:f"))[1]


def test_compiling_the_plan_does_not_import_task_code(modules: Path) -> None:
    write(modules, "planned.py", trap(modules, "ran") + "def f(x, ctx):\n    return x\n")
    plan = compile_plan(parse_document(spec("planned:f")))
    assert (plan.steps["s"].pass_params, plan.steps["s"].pass_ctx) == (("x",), True)
    assert plan.steps["s"].keywords_known
    assert not (modules / "ran").exists() and "planned" not in sys.modules


def test_the_worker_reads_keywords_the_source_did_not_state(modules: Path, tmp_path: Path) -> None:
    write(
        modules,
        "wrapped.py",
        """
        import functools

        def _wrap(func):
            @functools.wraps(func)
            def inner(*args, **kwargs):
                return func(*args, **kwargs)
            return inner

        @_wrap
        def f(x, ctx):
            return [x, ctx.point]
        """,
    )
    document = {
        "name": "t",
        "parameters": {"x": [1, 2], "y": [3]},
        "steps": {"s": {"run": "wrapped:f", "foreach": True}},
    }
    plan = compile_plan(parse_document(document))
    assert not plan.steps["s"].keywords_known
    call = TaskCall(
        campaign_id="c",
        step="s",
        kind="run",
        target="wrapped:f",
        point=1,
        attempt=1,
        results_url=str(tmp_path / "results"),
        parameters={"x": 2, "y": 3},
        keywords_known=False,
    )
    outcome = execute_task(call, {})
    assert outcome.ok, outcome.error
    assert outcome.value == [2, 1]
