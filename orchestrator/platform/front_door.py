"""The front door's part below the API: a project with work gets its cluster and instance.

Desired state and a reconcile step (as `distributed.deploy.spec`): every `interval`
seconds, or at once when woken (a submit, extend or restart through the front door), the
projects with unfinished campaigns and no live instance are brought up, each in a thread of
its own (a request never waits for it):

1. the provisioner creates the project's cluster (idempotent; a failed one from before is
   deleted and created again), and the front door waits while it is being created;
2. the instance handler starts the project's instance with the cluster's environment;

each stage an event on the waiting campaigns (`orchestrator.platform.stages`). A failure
fails those campaigns with the provisioner's or handler's reason. Projects idle for the
provisioner's `idle_timeout` have their instance stopped, then their cluster torn down
(`orchestrator.idle`); new work brings them up again. Since the store holds the desired
state, a restarted front door picks up where it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cluster import ClusterError
from cluster.instances import InstanceHandler
from cluster.provisioner import ClusterRecord, ClusterState, Provisioner, ProvisionerError
from orchestrator.idle import stop_idle_projects
from orchestrator.platform import stages
from orchestrator.platform.errors import PlatformError
from orchestrator.platform.settings import PlatformSettings
from orchestrator.platform.tiers import choose_tier
from orchestrator.service import Service

logger = logging.getLogger(__name__)

# the provisioner's cluster states as `GET …/cluster` names them
CLUSTER_STATES: Mapping[ClusterState, str] = {
    ClusterState.PROVISIONING: "creating",
    ClusterState.READY: "ready",
    ClusterState.FAILED: "failed",
    ClusterState.DELETING: "deleting",
    ClusterState.DELETED: "none",
}


def bring_up_lock(project: str) -> str:
    """The store-wide lock held while a front door brings `project` up: two front doors (or
    two overlapping scheduled invocations) never start two instances of one project."""
    return f"bring-up:{project}"


# what the instance's process gets besides its cluster's settings
InstanceEnvironment = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True)
class ProjectState:
    instance: str  # stopped | starting | running | stopping
    cluster: str  # none | creating | ready | deleting | failed
    url: str | None = None  # the instance's, while it runs


class FrontDoor:
    def __init__(
        self,
        service: Service,
        provisioner: Provisioner,
        instances: InstanceHandler,
        settings: PlatformSettings,
        environment: InstanceEnvironment = lambda _project: {},
    ):
        self.service = service
        self.provisioner = provisioner
        self.instances = instances
        self.settings = settings
        self._environment = environment
        self._busy: dict[str, str] = {}  # project -> starting | stopping
        self._stopped: set[str] = set()  # idle projects whose instance is known stopped
        self._idle_checked = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    # ------------------------------------------------------------------ life
    def start(self) -> FrontDoor:
        self._thread = threading.Thread(target=self._loop, name="front-door", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for projects with work now."""
        self._wake.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop looking; bring-ups under way finish (instances keep running: they are
        the platform's, not this process's)."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self._workers):
            worker.join(timeout)

    # ----------------------------------------------------------------- state
    def state(self, project: str) -> ProjectState:
        """What `GET …/cluster` reports on the front door."""
        record = self.provisioner.records.get(project)
        cluster = "none" if record is None else CLUSTER_STATES[record.state]
        with self._lock:
            busy = self._busy.get(project)
        if busy is not None:  # until the handler says it answers, it is starting
            return ProjectState(busy, cluster)
        found = self.instances.find(project)
        if found is not None and found.state == "running":
            return ProjectState("running", cluster, found.url)
        return ProjectState("starting" if found is not None else "stopped", cluster)

    # ------------------------------------------------------------- reconcile
    def reconcile(self) -> None:
        """One step: bring up projects with work and no instance; stop idle ones."""
        waiting: dict[str, list[str]] = {}
        for record in self.service.unfinished_campaigns():
            waiting.setdefault(record.project, []).append(record.id)
        for project, campaign_ids in waiting.items():
            if self._closing.is_set():
                return
            if self._claim(project, "starting") and not self._bring_up_in_background(
                project, campaign_ids
            ):
                self._release(project)
        if time.monotonic() - self._idle_checked >= self.settings.idle_interval:
            self._idle_checked = time.monotonic()
            self.stop_idle()

    def _bring_up_in_background(self, project: str, campaign_ids: list[str]) -> bool:
        self._stopped.discard(project)
        try:
            if self.instances.find(project) is not None:
                return False
        except ClusterError as exc:
            logger.warning("cannot tell whether %s has an instance: %s", project, exc)
            return False
        worker = threading.Thread(
            target=self._bring_up,
            args=(project, campaign_ids),
            name=f"bring-up-{project}",
            daemon=True,
        )
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()
        return True

    def _bring_up(self, project: str, campaign_ids: list[str]) -> None:
        try:
            with self.service.store.try_lock(bring_up_lock(project)) as held:
                # another front door brings it up, or has just done so
                if held and self.instances.find(project) is None:
                    self._bring_up_held(project, campaign_ids)
        except Exception:  # the store or the handler briefly unavailable: next time
            logger.exception("bringing up %s failed", project)
        finally:
            self._release(project)

    def _bring_up_held(self, project: str, campaign_ids: list[str]) -> None:
        try:
            tier = self.tier_for(project, campaign_ids)
            stages.record_stage(self.service, campaign_ids, stages.PROVISIONING, f"tier {tier}")
            self._ready_cluster(project, tier)
            stages.record_stage(self.service, campaign_ids, stages.STARTING)
            environment = self.instance_environment(project)
            instance = self.instances.start(project, environment)
        except (PlatformError, ProvisionerError, ClusterError) as exc:
            logger.warning("bringing up %s failed: %s", project, exc)
            self.fail(campaign_ids, str(exc))  # before release: nothing waits any more
        except Exception as exc:  # a bug, or the store gone: say so on the campaigns
            logger.exception("bringing up %s failed", project)
            self.fail(campaign_ids, f"unexpected error: {type(exc).__name__}: {exc}")
        else:  # the instance runs them now: whatever happens next is its to say
            try:
                stages.record_stage(self.service, campaign_ids, stages.READY, instance.url)
            except Exception:
                logger.exception("recording that the instance of %s is ready failed", project)

    def instance_environment(self, project: str) -> dict[str, str]:
        """What the project's instance gets: its ready cluster's settings, how to check
        tokens, and (local) its store URL and data folder."""
        return {
            **self.provisioner.cluster_environment(project),
            **self._environment(project),
        }

    def tier_for(self, project: str, campaign_ids: list[str]) -> str:
        specs = [self.service.campaign(cid).spec for cid in campaign_ids]
        own = self.settings.project_tiers.get(project, self.settings.default_tier)
        return choose_tier(specs, self.provisioner.settings.tiers, own)

    def _ready_cluster(self, project: str, tier: str) -> ClusterRecord:
        """The project's cluster once ready; PlatformError with the reason otherwise."""
        before = self.provisioner.records.get(project)
        if before is not None and before.state is ClusterState.FAILED:
            self.provisioner.delete(project)  # a failure of before: try afresh
        deadline = time.monotonic() + self.settings.cluster_timeout
        while True:
            record = self.provisioner.create(project, tier)
            if record.state is ClusterState.READY:
                return record
            if record.state is ClusterState.FAILED:
                raise PlatformError(
                    f"provisioning the cluster of {project} failed: {record.reason}"
                )
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"the cluster of {project} was not ready within "
                    f"{self.settings.cluster_timeout:g}s (it is {record.state})"
                )
            if self._closing.wait(min(10.0, self.settings.interval)):
                raise PlatformError("the front door stopped while the cluster was created")

    def fail(self, campaign_ids: list[str], reason: str) -> None:
        """Fail the campaigns that still wait or run, with `reason`."""
        for campaign_id in campaign_ids:
            try:
                if self.service.campaign(campaign_id).state in ("accepted", "running"):
                    self.service.fail(campaign_id, reason)
            except Exception:
                logger.exception("cannot fail campaign %s", campaign_id)

    # ------------------------------------------------------------------ idle
    def stop_idle(self) -> None:
        """Stop the instances of idle projects, then tear down their clusters."""

        def stop(project: str) -> bool:
            # asked once per idle spell (an ECS handler lists tasks to answer)
            if project in self._stopped or not self._claim(project, "stopping"):
                return False
            try:
                stopped = self.instances.stop(project)
                self._stopped.add(project)
                return stopped
            finally:
                self._release(project)

        try:
            for project in stop_idle_projects(self.provisioner, self.service, stop):
                logger.info("stopped the idle project %s", project)
        except Exception:  # the store or the back end briefly unavailable: next time
            logger.exception("stopping idle projects failed")

    # ----------------------------------------------------------------- busy
    def _claim(self, project: str, what: str) -> bool:
        with self._lock:
            if project in self._busy:
                return False
            self._busy[project] = what
            return True

    def _release(self, project: str) -> None:
        with self._lock:
            self._busy.pop(project, None)

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self.reconcile()
            except Exception:  # the store briefly unavailable: next time
                logger.exception("front door: reconciling projects failed")
            self._wake.wait(self.settings.interval)
            self._wake.clear()
