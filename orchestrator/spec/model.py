"""The campaign spec (DESIGN.md's contract) as pydantic models.

Unknown keys are errors, so a misspelt field is reported rather than ignored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from orchestrator.spec.syntax import ACCOUNT, CONSTRAINT, MODULE, PARTITION, check_name
from orchestrator.sweep import (
    MAX_POINTS,
    Axis,
    ChainedSweep,
    LinspaceAxis,
    ListAxis,
    RangeAxis,
    Sweep,
)
from orchestrator.units import parse_duration, parse_memory

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_STEPS = 1000
"""The most steps a campaign may have: the graph checks are linear, but a DAG this size is
already a mistake (a sweep, not steps, is the way to many tasks)."""
CALLABLE_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _axis(value: Any) -> Axis:
    if isinstance(value, Axis):
        return value
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("an axis needs at least one value")
        seen = [json.dumps(v, sort_keys=True, default=str) for v in value]
        if len(set(seen)) != len(seen):
            raise ValueError("an axis lists a value more than once (points would repeat)")
        return ListAxis(tuple(value))
    if isinstance(value, dict) and len(value) == 1:
        ((kind, args),) = value.items()
        if kind == "linspace":
            return _linspace(args)
        if kind == "range":
            return _range(args)
    raise ValueError(
        "an axis is a list of values, {linspace: [start, stop, n]} or "
        "{range: [start, stop]} / {range: [start, stop, step]}"
    )


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _linspace(args: Any) -> LinspaceAxis:
    if not (isinstance(args, list | tuple) and len(args) == 3 and all(map(_number, args))):
        raise ValueError("linspace takes [start, stop, n]")
    start, stop, n = args
    if not isinstance(n, int) or n < 1:
        raise ValueError("linspace's n must be a whole number ≥ 1 (an empty axis)")
    if n > MAX_POINTS:
        raise ValueError(f"linspace's n is more than {MAX_POINTS}")
    if not math.isfinite(float(stop) - float(start)):
        raise ValueError("linspace's stop - start is beyond the range of floats")
    return LinspaceAxis(float(start), float(stop), n)


def _range(args: Any) -> RangeAxis:
    if not (isinstance(args, list | tuple) and len(args) in (2, 3) and all(map(_number, args))):
        raise ValueError("range takes [start, stop] or [start, stop, step]")
    start, stop, step = (*args, 1) if len(args) == 2 else args
    if step == 0:
        raise ValueError("range's step must not be 0")
    axis = RangeAxis(start, stop, step)
    try:
        size = axis.size
    except OverflowError:  # (stop - start) / step beyond floats
        raise ValueError(f"range {list(args)} has too many values to count") from None
    if size == 0:
        raise ValueError(f"range {list(args)} is empty")
    if size > MAX_POINTS:
        raise ValueError(f"range {list(args)} has {size} values, more than {MAX_POINTS}")
    return axis


AxisField = Annotated[
    Axis,
    PlainValidator(_axis),
    PlainSerializer(lambda a: a.to_json()),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "minItems": 1},
                {"type": "object", "properties": {"linspace": {"type": "array"}}},
                {"type": "object", "properties": {"range": {"type": "array"}}},
            ]
        }
    ),
]


def _memory(value: Any) -> int:
    return parse_memory(value)


def _duration(value: Any) -> float:
    return parse_duration(value)


Memory = Annotated[int, BeforeValidator(_memory)]
Duration = Annotated[float, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Resources(_Strict):
    cores: int = Field(default=1, ge=1)
    memory: Memory | None = None
    walltime: Duration | None = None
    gpus: int = Field(default=0, ge=0)


def _module_name(value: str) -> str:
    return check_name("module", MODULE, value)


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ModuleName = Annotated[str, AfterValidator(_module_name)]


class BatchSpec(_Strict):
    """A step that is its own SLURM job (executed by the cluster package)."""

    script: str = Field(min_length=1)
    nodes: int = Field(default=1, ge=1)
    ntasks: int | None = Field(default=None, ge=1)
    cpus_per_task: int | None = Field(default=None, ge=1)
    partition: str | None = None
    account: str | None = None
    constraint: str | None = None
    exclusive: bool = False
    modules: list[ModuleName] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    array_parallelism: int | None = Field(default=None, ge=1)

    @field_validator("partition")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        return None if value is None else check_name("partition", PARTITION, value)

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return None if value is None else check_name("account", ACCOUNT, value)

    @field_validator("constraint")
    @classmethod
    def _constraint(cls, value: str | None) -> str | None:
        return None if value is None else check_name("constraint", CONSTRAINT, value)


StepKind = Literal["run", "command", "batch"]

CHUNK_AUTO = "auto"


def _chunk(value: Any) -> int | str | None:
    """`chunk`: points per Dask task, a whole number ≥ 1, or "auto" (sized from measured run
    times, see orchestrator/engine/chunks.py)."""
    if value is None or value == CHUNK_AUTO:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"chunk is a whole number ≥ 1 or 'auto' (points per Dask task), not {value!r}")


Chunk = Annotated[
    int | str | None,
    PlainValidator(_chunk),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1}, {"const": CHUNK_AUTO}, {"type": "null"}]}
    ),
]


class Step(_Strict):
    run: str | None = None
    command: str | None = None
    batch: BatchSpec | None = None
    foreach: bool = False
    needs: list[str] = Field(default_factory=list)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    resources: Resources = Field(default_factory=Resources)
    retries: int = Field(default=0, ge=0, le=100)
    timeout: Duration | None = None
    chunk: Chunk = None  # points per Dask task (foreach run/command steps); see _chunk

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("run", "command", "batch") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none"
            raise ValueError(f"a step has exactly one of run, command, batch (found {found})")
        return self

    @field_validator("run")
    @classmethod
    def _callable_path(cls, value: str | None) -> str | None:
        if value is not None and not CALLABLE_PATH.match(value):
            raise ValueError(f"{value!r} is not of the form 'package.module:function'")
        return value

    @field_validator("needs")
    @classmethod
    def _unique_needs(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a step more than once")
        return value

    @property
    def kind(self) -> StepKind:
        if self.run is not None:
            return "run"
        if self.command is not None:
            return "command"
        return "batch"


class Extension(_Strict):
    """Points added to a campaign after it was submitted (`extend`): a sub-grid of the same
    parameters, numbered after every point before it."""

    parameters: dict[str, AxisField] = Field(min_length=1)
    sweep: Literal["product", "zip"] = "product"

    @classmethod
    def from_points(cls, points: list[dict[str, Any]]) -> Extension:
        """Explicit points, as one zip block."""
        if not points:
            raise ValueError("no points given")
        names = sorted(points[0])
        for i, point in enumerate(points):
            if sorted(point) != names:
                raise ValueError(f"point {i} has parameters {sorted(point)}, not {names}")
        return cls.model_validate(
            {"parameters": {n: [p[n] for p in points] for n in names}, "sweep": "zip"}
        )


RESULTS_SCHEMES = frozenset({None, "file", "s3", "s3a", "cluster", "memory"})
"""A results location: a path (no scheme), or one of these URL schemes."""


class CampaignSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    parameters: dict[str, AxisField] = Field(default_factory=dict)
    sweep: Literal["product", "zip"] = "product"
    steps: dict[str, Step] = Field(min_length=1)
    results: str | None = None
    # blocks of points added while the campaign ran (`extend`), after the sweep's own points
    extensions: list[Extension] = Field(default_factory=list)

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, Axis]) -> dict[str, Axis]:
        for name in value:
            if not STEP_NAME.match(name) or name == "ctx":
                raise ValueError(f"{name!r} is not a valid parameter name (a Python identifier)")
        return value

    @field_validator("results")
    @classmethod
    def _results_location(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("results must not be empty (leave it out for the default)")
        scheme = value.split("://", 1)[0].lower() if "://" in value else None
        if scheme not in RESULTS_SCHEMES:
            raise ValueError(
                f"{value!r}: results is a path, file://, s3://bucket/prefix or "
                f"cluster:///absolute/path (not {scheme}://)"
            )
        if scheme == "cluster" and not value[len("cluster://") :].startswith("/"):
            raise ValueError(f"{value!r}: a cluster path is absolute, e.g. cluster:///lustre/x")
        if scheme == "s3" and not value[len("s3://") :].split("/", 1)[0]:
            raise ValueError(f"{value!r}: name the bucket, e.g. s3://bucket/prefix")
        return value

    @field_validator("steps")
    @classmethod
    def _step_names(cls, value: dict[str, Step]) -> dict[str, Step]:
        if len(value) > MAX_STEPS:
            raise ValueError(f"{len(value)} steps, more than a campaign may have ({MAX_STEPS})")
        for name in value:
            if not STEP_NAME.match(name) or name == "ctx":
                raise ValueError(f"{name!r} is not a valid step name (a Python identifier)")
        return value

    def make_sweep(self) -> Sweep | ChainedSweep:
        base = Sweep(self.parameters, self.sweep)
        if not self.extensions:
            return base
        return ChainedSweep([base, *(Sweep(e.parameters, e.sweep) for e in self.extensions)])

    def to_document(self) -> dict[str, Any]:
        """The spec as a plain document (YAML/JSON shape), for storing and round trips."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
