"""What gets registered in the knowledge graph, and the stable IRI of each thing.

IRIs are built only from identifiers that do not change when a registration is retried
(project, campaign id, step, point, attempt, output path), so registering the same thing
again replaces it instead of adding a copy. The records are frozen, so each computes its IRIs
once (`cached_property`): a task and its outputs share their `TaskRef`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote

from pyoxigraph import NamedNode

BASE_NAMESPACE = "https://openbluebrain.org/workflow/"
"""Instances live under `{BASE_NAMESPACE}projects/…` and `{BASE_NAMESPACE}users/…`."""
VOCAB_NAMESPACE = BASE_NAMESPACE + "vocab/"
"""Our own terms (`wf:` in the JSON-LD context)."""


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def _check_project(project: str) -> None:
    parts = project.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"project must be 'vlab_id/project_id', not {project!r}")


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")


def _check_absolute(name: str, value: str) -> None:
    try:
        NamedNode(value)  # pyoxigraph's IRI parser: absolute, no spaces or other bad code points
    except ValueError as exc:
        raise ValueError(f"{name} must be an absolute IRI or URL, not {value!r}: {exc}") from None


def project_iri(project: str) -> str:
    """The namespace of one project: `…/projects/{vlab_id}/{project_id}/`."""
    _check_project(project)
    vlab, proj = project.split("/")
    return f"{BASE_NAMESPACE}projects/{_segment(vlab)}/{_segment(proj)}/"


def campaign_iri(project: str, campaign_id: str) -> str:
    """The campaign's `prov:Activity`."""
    return f"{project_iri(project)}campaigns/{_segment(campaign_id)}"


def configuration_iri(project: str, campaign_id: str) -> str:
    """The campaign's spec as a `prov:Plan` entity (what every task `prov:used`)."""
    return campaign_iri(project, campaign_id) + "/configuration"


def agent_iri(user_id: str) -> str:
    """The user who submitted a campaign, as a `prov:Agent`."""
    return f"{BASE_NAMESPACE}users/{_segment(user_id)}"


def task_iri(project: str, campaign_id: str, step: str, point: int | None, attempt: int) -> str:
    """One attempt of one task: `…/tasks/{step}[/{point}]/attempts/{attempt}`."""
    where = _segment(step) if point is None else f"{_segment(step)}/{point}"
    return f"{campaign_iri(project, campaign_id)}/tasks/{where}/attempts/{attempt}"


def outputs_iri(project: str, campaign_id: str, step: str, point: int | None, attempt: int) -> str:
    """What a succeeded attempt handed downstream: the `prov:Collection` of its outputs,
    `…/attempts/{attempt}/outputs` (what a downstream task `prov:used`)."""
    return f"{task_iri(project, campaign_id, step, point, attempt)}/outputs"


def output_iri(
    project: str, campaign_id: str, step: str, point: int | None, attempt: int, relpath: str
) -> str:
    """One file an attempt wrote, by its path relative to the task's output folder (a
    member of the attempt's `outputs_iri`, under it)."""
    path = quote(relpath.strip("/"), safe="/")
    return f"{outputs_iri(project, campaign_id, step, point, attempt)}/{path}"


def step_outputs_iri(project: str, campaign_id: str, step: str) -> str:
    """A `foreach` step's results, gathered whole: the `prov:Collection` whose members are
    its succeeded attempts' `outputs_iri`, `…/campaigns/{id}/steps/{step}/outputs`."""
    return f"{campaign_iri(project, campaign_id)}/steps/{_segment(step)}/outputs"


@dataclass(frozen=True)
class CampaignProvenance:
    """A submitted campaign: its spec, who submitted it and when."""

    project: str
    """`vlab_id/project_id`."""
    campaign_id: str
    name: str
    spec: Mapping[str, Any]
    """The spec document as submitted (JSON-serialisable)."""
    submitted_by: str
    """The user id (the token's subject)."""
    submitted_at: datetime
    state: str | None = None
    """The campaign's state when registered (e.g. `accepted`, later `succeeded`)."""
    ended_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_project(self.project)
        _check_aware("submitted_at", self.submitted_at)
        _check_aware("ended_at", self.ended_at)

    @cached_property
    def iri(self) -> str:
        return campaign_iri(self.project, self.campaign_id)

    @property
    def configuration_iri(self) -> str:
        return configuration_iri(self.project, self.campaign_id)


@dataclass(frozen=True)
class TaskRef:
    """Which attempt of which task: enough to name it, and what its outputs point to."""

    project: str
    campaign_id: str
    step: str
    point: int | None
    """The point index for a `foreach` step, None for a single task."""
    attempt: int

    def __post_init__(self) -> None:
        _check_project(self.project)
        if self.point is not None and self.point < 0:
            raise ValueError(f"point must be ≥ 0, not {self.point}")
        if self.attempt < 0:
            raise ValueError(f"attempt must be ≥ 0, not {self.attempt}")

    @cached_property
    def iri(self) -> str:
        return task_iri(self.project, self.campaign_id, self.step, self.point, self.attempt)

    @cached_property
    def campaign_iri(self) -> str:
        return campaign_iri(self.project, self.campaign_id)

    @cached_property
    def outputs_iri(self) -> str:
        """The collection of this attempt's outputs (for a downstream task's `used`)."""
        return outputs_iri(self.project, self.campaign_id, self.step, self.point, self.attempt)

    @property
    def step_outputs_iri(self) -> str:
        """The collection of its step's outputs (for a task that gathers the step whole)."""
        return step_outputs_iri(self.project, self.campaign_id, self.step)

    def output_iri(self, relpath: str) -> str:
        """The IRI an output of this attempt gets."""
        return f"{self.outputs_iri}/{quote(relpath.strip('/'), safe='/')}"


@dataclass(frozen=True)
class TaskActivity:
    """One attempt of a task. It always used the campaign's configuration; `used` adds what
    it was given upstream (IRIs: an upstream attempt's `TaskRef.outputs_iri`, a gathered
    step's `TaskRef.step_outputs_iri`, a file's `TaskRef.output_iri`, or URLs).

    A succeeded attempt also describes the collection of its outputs (`outputs`: their
    paths, each an `OutputEntity` registered on its own), even when empty: it stands for
    what the attempt handed downstream. A `foreach` attempt's collection is a member of
    its step's."""

    ref: TaskRef
    parameters: Mapping[str, Any]
    """The point's parameters (empty for a task that is not swept)."""
    state: str
    started_at: datetime
    ended_at: datetime | None = None
    slurm_job_id: str | None = None
    used: Sequence[str] = field(default_factory=tuple)
    outputs: Sequence[str] = field(default_factory=tuple)
    """The paths of the files it wrote, relative to its output folder (`OutputEntity.relpath`)."""

    def __post_init__(self) -> None:
        _check_aware("started_at", self.started_at)
        _check_aware("ended_at", self.ended_at)
        if isinstance(self.used, str):
            raise TypeError("used must be a sequence of IRIs, not one string")
        for index, value in enumerate(self.used):
            _check_absolute(f"used[{index}]", value)
        if isinstance(self.outputs, str):
            raise TypeError("outputs must be a sequence of paths, not one string")
        for index, relpath in enumerate(self.outputs):
            if not relpath.strip("/"):
                raise ValueError(f"outputs[{index}] must not be empty")

    @property
    def iri(self) -> str:
        return self.ref.iri

    @property
    def succeeded(self) -> bool:
        """Only a succeeded attempt handed its outputs downstream (has a collection)."""
        return self.state == "succeeded"

    @cached_property
    def output_iris(self) -> tuple[str, ...]:
        """The members of its outputs collection, once each, in order."""
        return tuple(dict.fromkeys(self.ref.output_iri(relpath) for relpath in self.outputs))

    @property
    def project(self) -> str:
        return self.ref.project


@dataclass(frozen=True)
class OutputEntity:
    """A file an attempt produced, where it is kept (S3, Lustre, a folder) and its digest."""

    generated_by: TaskRef
    relpath: str
    """Its path relative to the task's output folder (names it, with `generated_by`)."""
    location: str
    """Its URL: `s3://bucket/key`, `file:///…`, a cluster path as a URL."""
    size: int
    digest: str
    """`algorithm:hex`, e.g. `sha256:9f86d0…`."""
    media_type: str = "application/octet-stream"
    generated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_absolute("location", self.location)
        _check_aware("generated_at", self.generated_at)
        if self.size < 0:
            raise ValueError(f"size must be ≥ 0, not {self.size}")
        algorithm, sep, value = self.digest.partition(":")
        if not sep or not algorithm or not value:
            raise ValueError(f"digest must be 'algorithm:hex', not {self.digest!r}")
        if not self.relpath.strip("/"):
            raise ValueError("relpath must not be empty")

    @cached_property
    def iri(self) -> str:
        return self.generated_by.output_iri(self.relpath)

    @property
    def project(self) -> str:
        return self.generated_by.project


Registrable = CampaignProvenance | TaskActivity | OutputEntity
"""Anything `KnowledgeGraph.register` takes."""
