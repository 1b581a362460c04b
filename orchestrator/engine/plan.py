"""A campaign spec compiled for execution: steps in order, and how each gets its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.spec import CampaignSpec, Step, topological_order
from orchestrator.spec.callables import find_callable, select_keywords
from orchestrator.sweep import ChainedSweep, Sweep


@dataclass
class StepPlan:
    name: str
    step: Step
    foreach: bool
    pointwise: list[str] = field(default_factory=list)  # foreach upstream of a foreach step
    broadcast: list[str] = field(default_factory=list)  # single upstream: one value for all
    gathered: list[str] = field(default_factory=list)  # foreach upstream of a single step
    downstream: list[str] = field(default_factory=list)
    pass_params: tuple[str, ...] | None = None
    pass_ctx: bool = False
    keywords_known: bool = True  # False: the worker reads them off the imported callable

    @property
    def needs(self) -> list[str]:
        return self.step.needs


@dataclass
class Plan:
    spec: CampaignSpec
    sweep: Sweep | ChainedSweep
    steps: dict[str, StepPlan]  # topological order

    @property
    def points(self) -> int:
        return len(self.sweep)

    def total(self, step: str) -> int:
        return self.points if self.steps[step].foreach else 1

    @property
    def foreach_steps(self) -> list[str]:
        return [name for name, s in self.steps.items() if s.foreach]

    @property
    def single_steps(self) -> list[str]:
        return [name for name, s in self.steps.items() if not s.foreach]

    def gathered_by_someone(self, step: str) -> bool:
        return any(step in self.steps[d].gathered for d in self.steps[step].downstream)

    def rerun_on_extend(self) -> list[str]:
        """Single steps that see every point: those gathering foreach steps and the single
        steps after them (they run again when points are added)."""
        found: set[str] = set()
        for name in self.single_steps:
            if self.steps[name].gathered:
                found.add(name)
                found |= {d for d in self.descendants(name) if not self.steps[d].foreach}
        return [name for name in self.single_steps if name in found]

    def descendants(self, step: str) -> set[str]:
        found: set[str] = set()
        todo = [step]
        while todo:
            for child in self.steps[todo.pop()].downstream:
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found


def compile_plan(spec: CampaignSpec, *, introspect: bool = True) -> Plan:
    order = topological_order(spec)
    steps: dict[str, StepPlan] = {}
    for name in order:
        step = spec.steps[name]
        plan = StepPlan(name=name, step=step, foreach=step.foreach)
        for need in step.needs:
            upstream = spec.steps[need]
            if not upstream.foreach:
                plan.broadcast.append(need)
            elif step.foreach:
                plan.pointwise.append(need)
            else:
                plan.gathered.append(need)
            steps[need].downstream.append(name)
        if step.kind == "run" and introspect:
            plan.pass_params, plan.pass_ctx, plan.keywords_known = _keywords(step, spec)
        steps[name] = plan
    return Plan(spec=spec, sweep=spec.make_sweep(), steps=steps)


def _keywords(step: Step, spec: CampaignSpec) -> tuple[tuple[str, ...] | None, bool, bool]:
    """(parameters to pass (None: all), whether ctx, whether the source said so): read from
    the callable's source, never by importing it here (task code runs on workers only).
    When the source does not say, the worker decides from the imported callable."""
    assert step.run is not None
    try:
        signature = find_callable(step.run).signature
    except Exception:  # absent since validation: the worker reports it
        signature = None
    if signature is None:
        return None, False, False
    return (*select_keywords(signature, list(spec.parameters), step.foreach), True)
