"""The project's compute.

All-in-one and instance: what this process runs (`instance` is `running`; `cluster` is
`ready` when it reaches a SLURM cluster, `none` on a local one). Front door: `instance` and
`cluster` from the instance handler and the provisioner; kind, workers and dashboard from
the project's instance, asked with the caller's token while it runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Context, ProjectDep
from api.forward import InstanceUnreachable, forward_get
from api.schemas import ClusterInfo, problems
from orchestrator.dashboard import campaigns_page_registered, campaigns_url

router = APIRouter(
    prefix="/v1/projects/{vlab_id}/{project_id}",
    tags=["cluster"],
    responses=problems(400, 401, 404, 422),
)


@router.get("/cluster", response_model=ClusterInfo)
async def cluster(scope: ProjectDep, context: Context, request: Request) -> dict[str, Any]:
    """Kind, workers and the Dask dashboard link of the project's cluster (started on the
    project's first campaign), its instance's state and its provisioned cluster's."""
    if context.front_door is not None:
        return await _from_instance(scope.project, context, request)
    kind = context.settings.cluster.kind
    provisioned = "ready" if kind == "slurm" else "none"
    runner = context.runner
    compute = runner.compute(scope.project, start=False) if runner is not None else None
    if compute is None:
        return {"kind": kind, "started": False, "workers": 0, "threads": 0, "cluster": provisioned}
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
        "cluster": provisioned,
    }


async def _from_instance(project: str, context: Context, request: Request) -> dict[str, Any]:
    assert context.front_door is not None
    state = await run_in_threadpool(context.front_door.state, project)
    answer: dict[str, Any] = {
        "kind": "slurm" if state.cluster != "none" else context.settings.cluster.kind,
        "started": False,
        "workers": 0,
        "threads": 0,
    }
    if state.instance == "running" and state.url:
        try:
            forwarded = await forward_get(request, state.url)
            if forwarded.status_code == 200:
                answer.update(forwarded.json())
        except InstanceUnreachable:
            pass  # what the front door knows still answers
    return {**answer, "instance": state.instance, "cluster": state.cluster}
