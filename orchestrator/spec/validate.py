"""Checks across fields that pydantic cannot express: the DAG, sweeps, callables, templates.

Validation runs no code of the campaign's: callables are checked from their source."""

from __future__ import annotations

import heapq
import importlib
import inspect
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

from orchestrator.errors import SpecError, SpecIssue
from orchestrator.spec.callables import CallableProblem, find_callable
from orchestrator.spec.model import CampaignSpec, Step
from orchestrator.spec.shell_template import PLACEHOLDER, UNSAFE, contexts
from orchestrator.sweep import MAX_POINTS, Sweep

TEMPLATE_BUILTINS = frozenset({"output_dir", "point", "attempt", "campaign_id", "step"})


def check_semantics(spec: CampaignSpec) -> None:
    issues: list[SpecIssue] = []
    issues += _check_sweep(spec)
    issues += _check_extensions(spec)
    issues += _check_graph(spec)
    issues += _check_chunks(spec)
    if not issues:  # signatures only make sense on a sound graph
        for name, step in spec.steps.items():
            issues += _check_step(spec, name, step)
    if issues:
        raise SpecError(issues)


def topological_order(spec: CampaignSpec) -> list[str]:
    """Steps so that every step comes after the steps it needs; among the steps ready at
    once, spec order first. Kahn's algorithm: O(steps + needs) (a heap orders the ready)."""
    index = {name: i for i, name in enumerate(spec.steps)}
    waiting = {name: len(step.needs) for name, step in spec.steps.items()}
    needed_by: dict[str, list[str]] = {name: [] for name in spec.steps}
    for name, step in spec.steps.items():
        for need in step.needs:
            needed_by[need].append(name)
    ready = [index[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(spec.steps)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in needed_by[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, index[child])
    if len(order) < len(names):
        raise SpecError.single("steps", f"cycle among {sorted(set(names) - set(order))}")
    return order


def check_gathered(spec: CampaignSpec, limit: int) -> None:
    """SpecError when a fan-in step would gather more than `limit` points."""
    if issues := gathered_points(spec, limit):
        raise SpecError(issues)


def gathered_points(spec: CampaignSpec, limit: int) -> list[SpecIssue]:
    """A fan-in step receives every point's result at once: refuse one that would gather
    more than `limit` points (the `engine.max_gathered_points` setting)."""
    try:
        points = len(spec.make_sweep())
    except (ValueError, OverflowError):
        return []  # the sweep's own problem is reported by _check_sweep
    if points <= limit:
        return []
    return [
        SpecIssue(
            f"steps.{name}.needs",
            f"gathers the results of {points} points, more than the limit of {limit} "
            "(setting engine.max_gathered_points)",
        )
        for name, step in spec.steps.items()
        if not step.foreach and any(spec.steps[need].foreach for need in step.needs)
    ]


def _check_sweep(spec: CampaignSpec) -> list[SpecIssue]:
    lengths = {name: axis.size for name, axis in spec.parameters.items()}
    if spec.sweep == "zip":
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
            return [SpecIssue("sweep", f"zip needs axes of equal length ({shown})")]
    elif math.prod(lengths.values()) > MAX_POINTS:
        return [
            SpecIssue(
                "parameters",
                f"the product sweep has {math.prod(lengths.values())} "
                f"points, more than {MAX_POINTS}",
            )
        ]
    return []


def _check_extensions(spec: CampaignSpec) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    names = sorted(spec.parameters)
    if not spec.extensions:
        return issues
    try:
        total = Sweep(spec.parameters, spec.sweep).size
    except ValueError:
        return issues  # the base sweep's own problem is reported by _check_sweep
    for i, ext in enumerate(spec.extensions):
        base = f"extensions.{i}"
        if sorted(ext.parameters) != names:
            issues.append(SpecIssue(f"{base}.parameters", f"needs exactly the parameters {names}"))
            continue
        lengths = [axis.size for axis in ext.parameters.values()]
        if ext.sweep == "zip" and len(set(lengths)) > 1:
            issues.append(SpecIssue(f"{base}.sweep", "zip needs axes of equal length"))
            continue
        total += lengths[0] if ext.sweep == "zip" else math.prod(lengths)
    if not issues and total > MAX_POINTS:
        issues.append(SpecIssue("extensions", f"more than {MAX_POINTS} points in all"))
    return issues


def _check_chunks(spec: CampaignSpec) -> list[SpecIssue]:
    """`chunk` groups the points of a swept `run` or `command` step: a batch step is already
    grouped (one SLURM job array), and a step without foreach has one task."""
    issues = []
    for name, step in spec.steps.items():
        if step.chunk is None:
            continue
        if step.kind == "batch":
            issues.append(
                SpecIssue(
                    f"steps.{name}.chunk",
                    "a batch step is not chunked (a swept batch step is already one SLURM job "
                    "array): chunk applies to run and command steps",
                )
            )
        elif not step.foreach:
            issues.append(
                SpecIssue(
                    f"steps.{name}.chunk",
                    "only a foreach step is chunked (a step without foreach is one task)",
                )
            )
    return issues


def _check_graph(spec: CampaignSpec) -> list[SpecIssue]:
    issues = []
    for name, step in spec.steps.items():
        for i, need in enumerate(step.needs):
            if need == name:
                issues.append(SpecIssue(f"steps.{name}.needs.{i}", "a step cannot need itself"))
            elif need not in spec.steps:
                issues.append(SpecIssue(f"steps.{name}.needs.{i}", f"unknown step {need!r}"))
    if issues:
        return issues
    cycle = _find_cycle(spec)
    if cycle:
        path = " → ".join([*cycle, cycle[0]])
        return [SpecIssue(f"steps.{cycle[0]}.needs", f"cycle: {path}")]
    return []


def _find_cycle(spec: CampaignSpec) -> list[str] | None:
    """A cycle of `needs`, as a path of steps; a depth-first search on an explicit stack
    (a chain of any length costs no recursion)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in spec.steps:
        if root in state:
            continue
        path: list[str] = [root]
        pending = [iter(spec.steps[root].needs)]
        state[root] = 1
        while pending:
            need = next(pending[-1], None)
            if need is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(need) == 1:
                return path[path.index(need) :]
            elif need not in state:
                state[need] = 1
                path.append(need)
                pending.append(iter(spec.steps[need].needs))
    return None


def offered_keywords(spec: CampaignSpec, step: Step) -> tuple[set[str], set[str]]:
    """(offered, required): parameters are offered; `with` and upstream results are required.

    A callable takes the point's parameters it names (all of them with **kwargs); every
    `with` value and every upstream result must be accepted.
    """
    offered = set(spec.parameters) if step.foreach else set()
    required = set(step.with_) | set(step.needs)
    return offered, required


def _check_step(spec: CampaignSpec, name: str, step: Step) -> list[SpecIssue]:
    base = f"steps.{name}"
    offered, required = offered_keywords(spec, step)
    clash = set(step.with_) & (set(step.needs) | offered)
    if clash:
        return [SpecIssue(f"{base}.with", f"{sorted(clash)} also named by a parameter or step")]
    if step.kind == "run":
        assert step.run is not None
        return _check_callable(f"{base}.run", step.run, offered, required)
    if step.kind == "command":
        assert step.command is not None
        return _check_template(f"{base}.command", step.command, offered | required)
    assert step.batch is not None
    return _check_template(f"{base}.batch.script", step.batch.script, offered | required)


def add_import_paths(paths: Iterable[str]) -> None:
    """Make modules next to a spec (or in the submitter's folder) importable here."""
    for path in paths:
        if path not in sys.path:
            sys.path.insert(0, path)
    importlib.invalidate_caches()


def import_callable(path: str) -> Callable[..., Any]:
    """`package.module:function` → the function (ImportError/AttributeError if absent).

    Runs the module's code: for workers, which run it anyway; validation reads the source
    instead (`spec.callables`)."""
    module_name, _, attr = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target


def _check_callable(
    path: str, target: str, offered: set[str], required: set[str]
) -> list[SpecIssue]:
    """Checked from the module's source, never by importing it (see spec.callables)."""
    try:
        found = find_callable(target)
    except ModuleNotFoundError as exc:
        return [SpecIssue(path, f"cannot import {target!r}: no module named {exc.name!r}")]
    except CallableProblem as exc:
        return [SpecIssue(path, f"cannot import {target!r}: {exc}")]
    except BaseException as exc:  # a finder may raise anything, SystemExit included
        return [SpecIssue(path, f"checking {target!r} failed: {type(exc).__name__}: {exc}")]
    if found.signature is None:
        return []  # the source does not say: checked when the worker imports it
    return _check_signature(path, target, found.signature, offered, required)


def _check_signature(
    path: str, target: str, signature: inspect.Signature, offered: set[str], required: set[str]
) -> list[SpecIssue]:
    params = signature.parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    issues = []
    rejected = sorted(k for k in required if k not in named) if not has_var_kw else []
    if rejected:
        issues.append(
            SpecIssue(
                path, f"{target} does not accept {', '.join(rejected)} (add them or **kwargs)"
            )
        )
    receivable = offered | required | {"ctx"}
    missing = sorted(
        p.name
        for p in params
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in receivable
    )
    if missing:
        issues.append(
            SpecIssue(path, f"{target} requires {', '.join(missing)}, which it will not receive")
        )
    positional_only = [
        p.name for p in params if p.kind is p.POSITIONAL_ONLY and p.default is p.empty
    ]
    if positional_only:
        issues.append(SpecIssue(path, f"{target} has positional-only parameters {positional_only}"))
    return issues


def _check_template(path: str, template: str, names: set[str]) -> list[SpecIssue]:
    unknown = sorted(
        {m for m in PLACEHOLDER.findall(template) if m not in names | TEMPLATE_BUILTINS}
    )
    if unknown:
        return [SpecIssue(path, f"unknown placeholder(s) {', '.join(unknown)}")]
    where = contexts(template)
    for match in PLACEHOLDER.finditer(template):
        if (context := where.get(match.start())) in UNSAFE:
            return [SpecIssue(path, f"placeholder {match.group(1)} sits in {UNSAFE[context]}")]
    return []
