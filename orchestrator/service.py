"""The operations every front end shares (CLI, notebooks, REST, the dashboard): submit,
inspect, steer, run.

`Service` is the one door into the store: front ends never reach the store or its tables;
the rules of what may be done to a campaign are checked here, and the engine is built here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.kg.outbox import Registrar
    from orchestrator.kg.process import RegistrarProcess

from cluster import Compute
from orchestrator.engine import Engine, EngineConfig, Progress
from orchestrator.engine.plan import compile_plan
from orchestrator.errors import InvalidRequest, TaskNotFound
from orchestrator.private_paths import make_private_folder
from orchestrator.results import ResultsLocation, campaign_results_url, on_the_cluster
from orchestrator.results.exports import ExportConfig
from orchestrator.results.roots import check_results_root
from orchestrator.settings import Settings
from orchestrator.spec import CampaignSpec, add_import_paths, parse_document, with_extension
from orchestrator.spec.validate import check_gathered
from orchestrator.states import CAMPAIGN_TERMINAL, CampaignState
from orchestrator.status import build_status
from orchestrator.store import (
    CampaignRecord,
    EventRecord,
    Store,
    TaskRecord,
    new_campaign_id,
    runner_alive,
)
from orchestrator.task_logs import parse_task_id, task_logs
from orchestrator.throttle import throttle_campaign

DEFAULT_PROJECT = "local/default"


class Service:
    def __init__(self, settings: Settings, store: Store | None = None, *, reader: bool = False):
        self.settings = settings
        if not reader:  # before anything writes there (the SQLite file, the kg, the issuer key)
            make_private_folder(settings.data_dir)
        self.store = store or Store(settings.database_url)
        if not reader:
            self.store.migrate()
            on_the_cluster.use(settings.cluster)  # where `cluster:///…` results paths are

    @classmethod
    def reader(cls, database_url: str) -> Service:
        """A service that only reads the store at `database_url` (the Campaigns page of
        campaigns another process runs): no migration, no process-wide setting changed."""
        from orchestrator.settings import load_settings

        return cls(load_settings(db_url=database_url), reader=True)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ submit
    def submit(
        self,
        spec: CampaignSpec,
        *,
        project: str = DEFAULT_PROJECT,
        owner: str | None = None,
        idempotency_key: str | None = None,
        import_paths: list[str] | None = None,
    ) -> str:
        """Store a validated campaign as `accepted`; nothing runs yet."""
        check_gathered(spec, self.settings.engine.max_gathered_points)
        check_results_root(spec.results, project, self.settings)
        # the results folder is named after the campaign id, so the id is chosen first
        campaign_id = new_campaign_id()
        location = spec.results or self.settings.results_url
        results = campaign_results_url(location, spec.name, campaign_id)
        return self.store.create_campaign(
            spec=spec.to_document(),
            name=spec.name,
            points=len(spec.make_sweep()),
            results_url=results,
            project=project,
            owner=owner,
            idempotency_key=idempotency_key,
            import_paths=import_paths,
            campaign_id=campaign_id,
        )

    @staticmethod
    def validate(document: dict[str, Any], import_paths: Iterable[str] = ()) -> CampaignSpec:
        """A spec document checked, its callables looked up in `import_paths` (SpecError
        names each offending field). Touches no store: an invalid spec leaves nothing."""
        paths = list(import_paths)
        if paths:
            add_import_paths(paths)
        return parse_document(document)

    def submit_document(
        self,
        document: dict[str, Any],
        *,
        import_paths: Iterable[str] = (),
        project: str = DEFAULT_PROJECT,
        owner: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """`validate` the document, then `submit` it."""
        paths = list(import_paths)
        return self.submit(
            self.validate(document, paths),
            project=project,
            owner=owner,
            idempotency_key=idempotency_key,
            import_paths=paths or None,
        )

    def submitted(self, project: str, idempotency_key: str) -> str | None:
        """The campaign an earlier submit with this key made in `project`, if any."""
        return self.store.find_by_idempotency_key(project, idempotency_key)

    # ----------------------------------------------------------------- inspect
    def status(self, campaign_id: str) -> dict[str, Any]:
        record = self.store.get_campaign(campaign_id)
        return build_status(record, self.store.task_counts(campaign_id))

    def campaign(self, campaign_id: str) -> CampaignRecord:
        """The stored campaign (CampaignNotFound if there is none)."""
        return self.store.get_campaign(campaign_id)

    def list_campaigns(
        self,
        *,
        project: str | None = None,
        state: str | None = None,
        name: str | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Statuses, newest first; `before` is the (created_at, id) of a previous page's last."""
        records = self.store.list_campaigns(
            project=project, state=state, name=name, limit=limit, before=before
        )
        return [build_status(r, self.store.task_counts(r.id)) for r in records]

    def unfinished_campaigns(self, project: str | None = None) -> list[CampaignRecord]:
        return self.store.unfinished_campaigns(project)

    def tasks(
        self,
        campaign_id: str,
        *,
        step: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        after: tuple[str, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks queued at least once, by step then point, each with its point's parameters;
        `after` is the (step, point) of a previous page's last (-1 for a single task)."""
        sweep = CampaignSpec.model_validate(self.store.get_campaign(campaign_id).spec).make_sweep()
        rows = self.store.list_tasks(campaign_id, step=step, state=state, limit=limit, after=after)
        return [
            {
                **row.__dict__,
                "parameters": (
                    sweep.point(row.point)
                    if row.point is not None and 0 <= row.point < len(sweep)
                    else None
                ),
            }
            for row in rows
        ]

    def unstarted_points(
        self, campaign_id: str, started: set[int]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Points other than `started`, with their parameters, in order."""
        record = self.store.get_campaign(campaign_id)
        sweep = CampaignSpec.model_validate(record.spec).make_sweep()
        return ((p, sweep.point(p)) for p in range(record.points) if p not in started)

    def finished_since(self, campaign_id: str, since: float) -> int:
        """Tasks of the campaign that succeeded or failed at `since` or later."""
        return self.store.finished_since(campaign_id, since)

    def recent_failures(self, campaign_id: str, n: int) -> list[TaskRecord]:
        """The `n` tasks that failed last, newest first."""
        return self.store.recent_failures(campaign_id, n)

    def manifest(self, campaign_id: str) -> list[dict[str, Any]]:
        """The manifest so far: one entry per finished task."""
        return ResultsLocation(self.store.get_campaign(campaign_id).results_url).read_manifest()

    def events(self, campaign_id: str, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """One page of a campaign the caller has already found (no second read of it)."""
        return self.store.events(campaign_id, after=after, limit=limit)

    def event_batch(
        self, campaign_id: str, after: int, limit: int = 1000
    ) -> tuple[list[EventRecord], bool]:
        """The next events after `after`, and whether the history has ended: the campaign is
        in a final state and every event is read. Followers (the CLI, notebooks, the live
        stream) call it until it says ended."""
        rows = self.store.events(campaign_id, after=after, limit=limit)
        if rows:
            return rows, False
        if self.store.get_campaign(campaign_id).state not in CAMPAIGN_TERMINAL:
            return [], False
        # one last read: events written just before the final state
        rows = self.store.events(campaign_id, after=after, limit=limit)
        return rows, not rows

    def follow_events(
        self, campaign_id: str, after: int = 0, *, follow: bool = False, poll: float = 0.5
    ) -> Iterator[EventRecord]:
        """Every event after `after`; with `follow`, new ones too until the campaign ends."""
        self.store.get_campaign(campaign_id)
        while True:
            rows, ended = self.event_batch(campaign_id, after, limit=5000)
            yield from rows
            if rows:
                after = rows[-1].seq
                continue
            if ended or not follow:
                return
            time.sleep(poll)

    def task(self, campaign_id: str, task: str) -> TaskRecord:
        step, point = parse_task_id(task)
        record = self.store.get_campaign(campaign_id)
        steps = record.spec.get("steps", {})
        if step not in steps:
            raise TaskNotFound(campaign_id, task)
        if steps[step].get("foreach") and point is None:
            raise TaskNotFound(
                campaign_id, task, f": {step} runs per point, name one (e.g. {step}/0)"
            )
        if point is not None and point >= record.points:
            raise TaskNotFound(campaign_id, task)
        row = self.store.get_task(campaign_id, step, point)
        if row is None:
            return TaskRecord(step=step, point=point, state="pending", attempt=0)
        return row

    def logs(self, campaign_id: str, task: str, tail: int = 20000) -> str:
        """A task's record, its events, and the log files in its output folder."""
        row = self.task(campaign_id, task)
        history = self._task_events(campaign_id, row.step, row.point)
        results_url = self.store.get_campaign(campaign_id).results_url
        return task_logs(task, row, history, ResultsLocation(results_url), tail)

    def _task_events(self, campaign_id: str, step: str, point: int | None) -> list[EventRecord]:
        found: list[EventRecord] = []
        after = 0
        while True:
            batch = self.store.events(campaign_id, after=after, limit=5000)
            if not batch:
                return found
            found += [e for e in batch if e.step == step and e.point == point]
            after = batch[-1].seq

    # ------------------------------------------------------------------- steer
    def cancel(
        self, campaign_id: str, *, step: str | None = None, point: int | None = None
    ) -> None:
        record = self.store.get_campaign(campaign_id)
        if step is not None and step not in record.spec.get("steps", {}):
            raise InvalidRequest(f"campaign {campaign_id} has no step {step!r}")
        if point is not None and not 0 <= point < record.points:
            raise InvalidRequest(f"point {point} is outside 0..{record.points - 1}")
        if record.state in CAMPAIGN_TERMINAL:
            raise InvalidRequest(f"campaign {campaign_id} is already {record.state}")
        # a campaign nobody runs is cancelled at once; the store does so only if no runner
        # took it after this check (one that did acts on the request instead)
        idle = not runner_alive(record.runner, record.lease_until, time.time())
        at_once = record if step is None and point is None and idle else None
        self.store.request_cancel(campaign_id, step=step, point=point, at_once=at_once)

    def extend(
        self,
        campaign_id: str,
        *,
        parameters: dict[str, Any] | None = None,
        sweep: str = "product",
        points: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Add points to a campaign, running or finished: a sub-grid (`parameters`, as in a
        spec, with `sweep`) or explicit `points`. New points are numbered after the others;
        finished work is untouched, fan-in steps run again to see the new points. Validated
        as a spec is (SpecError names the field); returns the campaign's status."""
        record = self.store.get_campaign(campaign_id)
        add_import_paths(record.import_paths or [])
        spec = with_extension(record.spec, parameters=parameters, sweep=sweep, points=points)
        check_gathered(spec, self.settings.engine.max_gathered_points)
        rerun = compile_plan(spec, introspect=False).rerun_on_extend()
        extended, total = spec.to_document(), len(spec.make_sweep())
        if record.state == CampaignState.CANCELLED:
            raise InvalidRequest(f"campaign {campaign_id} is cancelled; restart it first")
        if total <= record.points:
            raise InvalidRequest("an extension must add points")
        # checked on `record`: the store writes only while the campaign's state and points
        # are still these; if they changed (it ended, or was extended), judge it again
        if self.store.extend(campaign_id, extended, total, rerun, seen=record) is None:
            return self.extend(campaign_id, parameters=parameters, sweep=sweep, points=points)
        return self.status(campaign_id)

    def throttle(self, campaign_id: str, limit: int, *, step: str | None = None) -> dict[str, Any]:
        """Change a running campaign's concurrency (orchestrator/throttle.py); its status."""
        throttle_campaign(self.store, campaign_id, limit, step)
        return self.status(campaign_id)

    def restart(self, campaign_id: str) -> int:
        """Failed and cancelled tasks back to pending (InvalidRequest while a runner holds it)."""
        record = self.store.get_campaign(campaign_id)
        if runner_alive(record.runner, record.lease_until, time.time()):
            raise InvalidRequest(f"campaign {campaign_id} is still running ({record.runner})")
        # the store writes only while the lease is the one judged dead here; if a runner
        # took the campaign meanwhile, judging again finds it alive
        restarted = self.store.restart(campaign_id, seen=record)
        return self.restart(campaign_id) if restarted is None else restarted

    def delete(self, campaign_id: str) -> None:
        record = self.store.get_campaign(campaign_id)
        if record.state not in CAMPAIGN_TERMINAL:
            raise InvalidRequest(f"campaign {campaign_id} is {record.state}; cancel it first")
        # the store deletes only while the state is the one checked here (not restarted since)
        if not self.store.delete_campaign(campaign_id, seen=record):
            self.delete(campaign_id)

    # --------------------------------------------------------------------- run
    def engine_config(self) -> EngineConfig:
        fsx = self.settings.cluster.fsx
        export = None
        if fsx.file_system_id is not None and fsx.export_after != "never":
            export = ExportConfig(
                file_system_id=fsx.file_system_id,
                mount_dir=fsx.mount_dir,
                after=fsx.export_after,
                poll_interval=fsx.poll_interval,
                timeout=fsx.timeout,
            )
        return EngineConfig(
            **self.settings.engine.model_dump(), provenance=self.settings.kg.enabled, export=export
        )

    def engine(
        self, campaign_id: str, compute: Compute, progress: Progress | None = None
    ) -> Engine:
        """The engine that runs (or resumes) `campaign_id` on `compute`: `run()` it."""
        return Engine(
            self.store,
            compute.client,
            campaign_id,
            self.engine_config(),
            progress,
            compute=compute,
        )

    def run(self, campaign_id: str, compute: Compute, progress: Progress | None = None) -> str:
        """Run (or resume) a campaign to its end on `compute`; returns the final state."""
        return self.engine(campaign_id, compute, progress).run()

    def fail(self, campaign_id: str, message: str) -> None:
        """End a campaign `failed` with `message` (e.g. its compute could not be started)."""
        self.store.set_campaign_state(campaign_id, CampaignState.FAILED, message)

    def registrar(self) -> Registrar:
        """Sends the store's outbox to the knowledge graph (start() it; close(drain=…))."""
        from orchestrator.kg.factory import open_registrar

        return open_registrar(self.store, self.settings.kg, self.settings.data_dir)

    def start_registrar(self) -> Registrar | RegistrarProcess:
        """The registrar as settings say (`kg.registrar`), started; None-safe `close(drain)`.
        Provenance off and nothing left in the outbox: not started (its process costs ~1.5 s)"""
        if not self.settings.kg.enabled and not self.store.outbox_backlog():
            return self.registrar()
        if self.settings.kg.registrar == "process":
            from orchestrator.kg.process import RegistrarProcess

            return RegistrarProcess(self.settings).start()
        return self.registrar().start()

    def unfinished(self, project: str | None = None) -> list[str]:
        return [r.id for r in self.store.unfinished_campaigns(project)]

    def last_activity(self, now: float) -> dict[str, float]:
        """When each project last had work (its idle clusters are torn down)."""
        return self.store.last_activity(now)

    def ping(self) -> None:
        """Raise if the store cannot be reached (readiness)."""
        self.store.ping()
