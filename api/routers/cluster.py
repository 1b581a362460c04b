"""The project's compute."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Context, ProjectDep
from api.schemas import ClusterInfo, problems
from orchestrator.dashboard import campaigns_page_registered, campaigns_url

router = APIRouter(
    prefix="/v1/projects/{vlab_id}/{project_id}",
    tags=["cluster"],
    responses=problems(400, 401, 404, 422),
)


@router.get("/cluster", response_model=ClusterInfo)
async def cluster(scope: ProjectDep, context: Context) -> dict[str, Any]:
    """Kind, workers and the Dask dashboard link of the project's cluster (started on the
    project's first campaign)."""
    compute = context.runner.compute(scope.project, start=False)
    kind = context.settings.cluster.kind
    if compute is None:
        return {"kind": kind, "started": False, "workers": 0, "threads": 0}
    info = compute.client.scheduler_info(n_workers=-1) if compute.client else {}
    workers = info.get("workers", {})
    return {
        "kind": compute.kind,
        "started": True,
        "workers": len(workers),
        "threads": sum(w.get("nthreads", 0) for w in workers.values()),
        "dashboard_link": compute.dashboard_link,
        "campaigns_dashboard": (
            campaigns_url(compute.dashboard_link, scope.project)
            if campaigns_page_registered()
            else None
        ),
    }
