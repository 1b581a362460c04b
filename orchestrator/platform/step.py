"""One reconcile pass that never waits: the front door where nothing runs between requests.

A front door on AWS Lambda has no thread of its own (the function is frozen between
invocations), so a schedule (an EventBridge rule, e.g. `rate(1 minute)`) invokes it, and each
invocation moves every project with work one stage further, from what the provisioner and
the instance handler say now:

- no cluster (or a deleted one): create it, `provisioning` on the waiting campaigns;
- a cluster being created: look again next time (after `cluster_timeout`, fail them);
- a failed cluster: fail the campaigns that saw it being provisioned, with its reason; one
  failed before they came is deleted, to be created afresh;
- a ready cluster and no instance: start it (`starting`);
- an instance that answers: `ready`, once.

A project is brought up under a store-wide lock (`bring_up_lock`): overlapping invocations,
or a front door running as a server beside, never start two instances of one project.
Idle projects are stopped as by the threaded front door. A stage is recorded when this pass
does what it names, so a schedule that runs every minute adds no event of its own.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from cluster import ClusterError
from cluster.provisioner import ClusterRecord, ClusterState, ProvisionerError
from orchestrator.platform import stages
from orchestrator.platform.front_door import FrontDoor, bring_up_lock

logger = logging.getLogger(__name__)

# what `reconcile_once` did for a project
BUSY = "another front door brings it up"
CREATED, WAITING, FAILED, DELETED, STARTED, READY, RUNNING = (
    "cluster created",
    "waiting for its cluster",
    "failed",
    "failed cluster deleted",
    "instance started",
    "instance ready",
    "instance running",
)


def reconcile_once(front_door: FrontDoor) -> dict[str, str]:
    """One pass over the projects with unfinished campaigns; what was done, by project."""
    waiting: dict[str, list[str]] = {}
    for record in front_door.service.unfinished_campaigns():
        waiting.setdefault(record.project, []).append(record.id)
    done: dict[str, str] = {}
    for project, campaign_ids in waiting.items():
        try:
            with front_door.service.store.try_lock(bring_up_lock(project)) as held:
                done[project] = _step(front_door, project, campaign_ids) if held else BUSY
        except (ProvisionerError, ClusterError) as exc:
            logger.warning("bringing up %s failed: %s", project, exc)
            front_door.fail(campaign_ids, str(exc))
            done[project] = FAILED
    front_door.stop_idle()
    return done


def _step(front_door: FrontDoor, project: str, campaign_ids: list[str]) -> str:
    found = front_door.instances.find(project)
    if found is not None:
        if found.state == "running" and _last_stage(front_door, campaign_ids) != stages.READY:
            stages.record_stage(front_door.service, campaign_ids, stages.READY, found.url)
            return READY
        return RUNNING
    provisioner = front_door.provisioner
    record = provisioner.records.get(project)
    if record is None or record.state is ClusterState.DELETED:
        tier = front_door.tier_for(project, campaign_ids)
        stages.record_stage(front_door.service, campaign_ids, stages.PROVISIONING, f"tier {tier}")
        record = provisioner.create(project, tier)
        if record.state is not ClusterState.READY:
            return _unless_failed(front_door, record, campaign_ids, CREATED)
    elif record.state is not ClusterState.READY:
        if record.state is ClusterState.FAILED and not _saw_provisioning(front_door, campaign_ids):
            provisioner.delete(project)  # a failure of before: created afresh next time
            return DELETED
        record = provisioner.status(project)
        if record.state is not ClusterState.READY:
            return _unless_failed(front_door, record, campaign_ids, WAITING)
    stages.record_stage(front_door.service, campaign_ids, stages.STARTING)
    instance = front_door.instances.start(project, front_door.instance_environment(project))
    if instance.state == "running":
        stages.record_stage(front_door.service, campaign_ids, stages.READY, instance.url)
        return READY
    return STARTED


def _unless_failed(
    front_door: FrontDoor, record: ClusterRecord, campaign_ids: list[str], otherwise: str
) -> str:
    project = record.project
    if record.state is ClusterState.FAILED:
        front_door.fail(
            campaign_ids, f"provisioning the cluster of {project} failed: {record.reason}"
        )
        return FAILED
    timeout = front_door.settings.cluster_timeout
    if record.state is ClusterState.PROVISIONING and time.time() - _created(record) > timeout:
        front_door.fail(
            campaign_ids,
            f"the cluster of {project} was not ready within {timeout:g}s (it is {record.state})",
        )
        return FAILED
    return otherwise


def _created(record: ClusterRecord) -> float:
    return datetime.fromisoformat(record.created_at).timestamp()


def _last_stage(front_door: FrontDoor, campaign_ids: list[str]) -> str | None:
    """The latest stage recorded on the newest waiting campaign."""
    stage = stages.latest_stage(front_door.service, campaign_ids[-1])
    return stage.state if stage is not None else None


def _saw_provisioning(front_door: FrontDoor, campaign_ids: list[str]) -> bool:
    """Whether the campaigns waited for this cluster (a stage recorded on any of them)."""
    store = front_door.service.store
    return any(store.events(cid, kind=stages.KIND, limit=1) for cid in campaign_ids)
