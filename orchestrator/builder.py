"""Building a campaign in Python: the same model, and the same checks, as a spec file.

campaign = (
    Campaign("fi-curve", results="./results")
    .parameters(amplitude=linspace(0.0, 0.5, 11), gnabar=[0.10, 0.12, 0.14])
    .step("simulate", run=simulate, foreach=True, with_={"duration_ms": 300}, retries=2)
    .step("features", run=features, foreach=True, needs=["simulate"])
    .step("summary", run=summary, needs=["features"])
)
spec = campaign.spec()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.spec import CampaignSpec, parse_document


def linspace(start: float, stop: float, n: int) -> dict[str, list[float]]:
    return {"linspace": [start, stop, n]}


def grid_range(start: float, stop: float, step: float = 1) -> dict[str, list[float]]:
    """`{range: [start, stop, step]}` (named so as not to shadow the builtin)."""
    return {"range": [start, stop, step]}


def callable_path(func: Callable[..., Any], field: str = "run") -> str:
    """`module:qualname` of an importable function (lambdas and local functions are not)."""
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise SpecError.single(
            field,
            f"{func!r} is not importable by workers: define it in a module, not in __main__ "
            "or inside a function",
        )
    return f"{module}:{qualname}"


class Campaign:
    """A mutable builder; `spec()` validates and returns the immutable CampaignSpec."""

    def __init__(self, name: str, *, sweep: str = "product", results: str | None = None):
        self._doc: dict[str, Any] = {"name": name, "parameters": {}, "sweep": sweep, "steps": {}}
        if results is not None:
            self._doc["results"] = results

    def parameters(self, **axes: Any) -> Campaign:
        self._doc["parameters"].update(axes)
        return self

    def step(
        self,
        name: str,
        *,
        run: Callable[..., Any] | str | None = None,
        command: str | None = None,
        batch: dict[str, Any] | None = None,
        foreach: bool = False,
        needs: list[str] | None = None,
        with_: dict[str, Any] | None = None,
        resources: dict[str, Any] | None = None,
        retries: int = 0,
        timeout: str | float | None = None,
        chunk: int | str | None = None,
    ) -> Campaign:
        doc: dict[str, Any] = {"foreach": foreach, "retries": retries}
        if run is not None:
            doc["run"] = run if isinstance(run, str) else callable_path(run, f"steps.{name}.run")
        if command is not None:
            doc["command"] = command
        if batch is not None:
            doc["batch"] = batch
        for key, value in (("needs", needs), ("with", with_), ("resources", resources)):
            if value is not None:
                doc[key] = value
        if timeout is not None:
            doc["timeout"] = timeout
        if chunk is not None:  # points per Dask task (a foreach run/command step), or "auto"
            doc["chunk"] = chunk
        self._doc["steps"][name] = doc
        return self

    def document(self) -> dict[str, Any]:
        return self._doc

    def spec(self) -> CampaignSpec:
        return parse_document(self._doc)
