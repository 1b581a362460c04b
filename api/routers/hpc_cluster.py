"""The project's HPC cluster, through the provisioner: internal routes, callable only by the
service's own identity (a token with the `orchestrator-service` realm role), never by end
users, whatever their role in the project (403; 404 outside their projects).

In the OpenAPI document like every route (so the walk of tests/api covers it too), tagged
`hpc-cluster`; tests/api/test_hpc_cluster.py checks the service identity's own access.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ID, Context, ServiceIdentity
from api.errors import NotFound
from api.schemas import problems
from cluster.provisioner import (
    ClusterNotFound,
    ClusterRecord,
    Provisioner,
    ProvisionerConfigError,
    open_provisioner,
)

router = APIRouter(
    prefix="/v1/projects/{vlab_id}/{project_id}",
    tags=["hpc-cluster"],
    responses=problems(401, 403, 404, 422),
)
VlabId = Annotated[str, Path(pattern=ID)]
ProjectId = Annotated[str, Path(pattern=ID)]


class HpcClusterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(default="small", max_length=100, description="a tier of the provisioner")
    no_lustre: bool = Field(default=False, description="no FSx for Lustre file system")


class HpcClusterPublic(BaseModel):
    """The cluster record. Private keys are named by their Secrets Manager ARNs only."""

    project: str
    name: str
    kind: str
    tier: str
    state: str = Field(description="provisioning | ready | failed | deleting | deleted")
    reason: str | None = None
    no_lustre: bool
    cost_centre: str | None = None
    subnet_id: str | None = None
    key_name: str | None = None
    key_secret_arn: str | None = None
    host_key_secret_arn: str | None = None
    host_public_key: str | None = Field(None, description="the head node's SSH host key")
    known_hosts: str | None = Field(None, description="the line to verify the head node by")
    connection: dict[str, Any] | None = None
    created_at: str
    updated_at: str


def provisioner_of(request: Request, context: Context) -> Provisioner:
    """The app's provisioner (`settings.provisioner`), opened on first use."""
    provisioner: Provisioner | None = getattr(request.app.state, "provisioner", None)
    if provisioner is None:
        settings = context.settings.provisioner
        provisioner = open_provisioner(settings, data_dir=context.settings.data_dir)
        request.app.state.provisioner = provisioner
    return provisioner


@router.post("/hpc-cluster", status_code=202, response_model=HpcClusterPublic)
async def create_hpc_cluster(
    request: Request,
    context: Context,
    _: ServiceIdentity,
    vlab_id: VlabId,
    project_id: ProjectId,
    body: Annotated[HpcClusterCreate | None, Body()] = None,
) -> dict[str, Any]:
    """Create the project's cluster, or return the one it has (idempotent)."""
    body = body or HpcClusterCreate()
    provisioner = provisioner_of(request, context)
    try:
        record = await run_in_threadpool(
            provisioner.create, f"{vlab_id}/{project_id}", body.tier, no_lustre=body.no_lustre
        )
    except ProvisionerConfigError as exc:
        raise RequestValidationError(
            [{"loc": ("body", "tier"), "msg": str(exc), "type": "value_error"}]
        ) from exc
    return _public(record)


@router.get("/hpc-cluster", response_model=HpcClusterPublic)
async def get_hpc_cluster(
    request: Request, context: Context, _: ServiceIdentity, vlab_id: VlabId, project_id: ProjectId
) -> dict[str, Any]:
    """The project's cluster, its state refreshed from the back end."""
    provisioner = provisioner_of(request, context)
    return _public(await _call(provisioner.status, f"{vlab_id}/{project_id}"))


@router.delete("/hpc-cluster", status_code=202, response_model=HpcClusterPublic)
async def delete_hpc_cluster(
    request: Request, context: Context, _: ServiceIdentity, vlab_id: VlabId, project_id: ProjectId
) -> dict[str, Any]:
    """Delete the project's cluster (safe to repeat); its subnet and key are released once
    the back end confirms it is gone."""
    provisioner = provisioner_of(request, context)
    return _public(await _call(provisioner.delete, f"{vlab_id}/{project_id}"))


async def _call(operation: Any, project: str) -> ClusterRecord:
    try:
        record: ClusterRecord = await run_in_threadpool(operation, project)
    except ClusterNotFound as exc:
        raise NotFound(f"no HPC cluster for {project}") from exc
    return record


def _public(record: ClusterRecord) -> dict[str, Any]:
    return record.to_dict()
