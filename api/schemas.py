"""Response and request models (the OpenAPI document is built from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StepCounts(BaseModel):
    total: int
    pending: int = 0
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class Throttle(BaseModel):
    window: int | None = Field(None, description="points in flight at most")
    steps: dict[str, int] = Field(
        default_factory=dict, description="batch steps' job array parallelism"
    )


class CampaignStatus(BaseModel):
    id: str
    name: str
    project: str
    state: str = Field(description="accepted | running | succeeded | failed | cancelled")
    points: int = Field(description="number of sweep points")
    counts: dict[str, int] = Field(description="task counts by state over all steps")
    steps: dict[str, StepCounts]
    results: str
    message: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    throttle: Throttle | None = Field(None, description="the live throttle, once throttled")


class CampaignPage(BaseModel):
    items: list[CampaignStatus]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page")


class CancelRequest(BaseModel):
    step: str | None = Field(None, description="only this step (and what needs it)")
    point: int | None = Field(None, ge=0, description="only this point")


class ExtendRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"points": [{"amplitude": 0.11, "gnabar": 0.12}]}]},
    )

    parameters: dict[str, Any] | None = Field(
        None, description="a sub-grid: one axis per parameter, as in a spec's `parameters`"
    )
    sweep: Literal["product", "zip"] = "product"
    points: list[dict[str, Any]] | None = Field(
        None, min_length=1, max_length=100_000, description="explicit points"
    )


class ThrottleRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"limit": 4}, {"limit": 2, "step": "sim"}]}
    )

    limit: int = Field(ge=1, description="the new limit: points in flight, or array tasks")
    step: str | None = Field(
        None, max_length=100, description="a batch step: its job arrays' parallelism"
    )


class Task(BaseModel):
    step: str
    point: int | None
    parameters: dict[str, Any] | None = Field(None, description="the point's parameters")
    state: str
    attempt: int
    result: Any = None
    result_url: str | None = None
    error: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None = None


class Event(BaseModel):
    seq: int
    time: float
    kind: str
    step: str | None = None
    point: int | None = None
    state: str | None = None
    attempt: int | None = None
    message: str | None = None


class EventPage(BaseModel):
    items: list[Event]
    next_after: int = Field(description="pass as `after` to read on")


class ClusterInfo(BaseModel):
    kind: str
    started: bool
    workers: int
    threads: int
    dashboard_link: str | None = None
    campaigns_dashboard: str | None = Field(
        None, description="the dashboard's Campaigns page: progress per campaign and step"
    )
    instance: Literal["stopped", "starting", "running", "stopping"] = Field(
        "running", description="the project's instance (on a front door: as its handler says)"
    )
    cluster: Literal["none", "creating", "ready", "deleting", "failed"] = Field(
        "none",
        description="the project's provisioned cluster (on a front door: as the provisioner says)",
    )


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="422: each offending field")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error answers, all problem+json."""
    text = {
        400: "Bad request (e.g. an invalid cursor)",
        401: "Missing or invalid token",
        403: "Your role does not allow this",
        404: "Not found, or not your project",
        409: "Not allowed in the campaign's state",
        413: "Request body too large",
        422: "Invalid request or campaign spec (fields named in `errors`)",
    }
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {
            "description": text[code],
            "model": Problem,
            "content": {"application/problem+json": {"schema": schema}},
        }
        for code in statuses
    }


SPEC_EXAMPLE: dict[str, Any] = {
    "name": "fi-curve",
    "parameters": {"amplitude": {"linspace": [0.0, 0.24, 21]}, "gnabar": [0.10, 0.12, 0.14]},
    "steps": {
        "simulate": {
            "run": "orchestrator.demo.fi_curve:simulate",
            "foreach": True,
            "with": {"duration_ms": 300},
            "retries": 2,
        },
        "features": {
            "run": "orchestrator.demo.fi_curve:features",
            "foreach": True,
            "needs": ["simulate"],
            "chunk": "auto",
        },
        "summary": {"run": "orchestrator.demo.fi_curve:summary", "needs": ["features"]},
    },
}
