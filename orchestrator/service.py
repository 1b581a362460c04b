"""The operations every front end shares (CLI, notebooks, REST): submit, inspect, steer, run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from orchestrator.kg.outbox import Registrar
    from orchestrator.kg.process import RegistrarProcess

from cluster import Compute
from orchestrator.engine import Engine, EngineConfig, Progress
from orchestrator.engine.plan import compile_plan
from orchestrator.errors import CampaignNotFound, InvalidRequest, SpecError, TaskNotFound
from orchestrator.results import ResultsLocation, campaign_results_url, on_the_cluster
from orchestrator.results.exports import ExportConfig
from orchestrator.settings import Settings
from orchestrator.spec import CampaignSpec, add_import_paths, parse_document
from orchestrator.spec.model import Extension
from orchestrator.status import build_status
from orchestrator.store import EventRecord, Store, TaskRecord

DEFAULT_PROJECT = "local/default"
_TASK_ID = re.compile(r"^(?P<step>[A-Za-z_]\w*)(?:(?:/|:|\[)(?P<point>\d+)\]?)?$")


class Service:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store or Store(settings.database_url)
        self.store.migrate()
        on_the_cluster.use(settings.cluster)  # where `cluster:///…` results paths are

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
        from orchestrator.store.store import new_campaign_id

        # the results folder is named after the campaign id, so the id is chosen first
        campaign_id = new_campaign_id()
        results = campaign_results_url(
            spec.results or self.settings.results_url, spec.name, campaign_id
        )
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

    # ----------------------------------------------------------------- inspect
    def status(self, campaign_id: str) -> dict[str, Any]:
        record = self.store.get_campaign(campaign_id)
        return build_status(record, self.store.task_counts(campaign_id))

    def list_campaigns(
        self,
        *,
        project: str | None = None,
        state: str | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        records = self.store.list_campaigns(project=project, state=state, name=name, limit=limit)
        return [build_status(r, self.store.task_counts(r.id)) for r in records]

    def events(self, campaign_id: str, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        self.store.get_campaign(campaign_id)
        return self.store.events(campaign_id, after=after, limit=limit)

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
        record = self.store.get_campaign(campaign_id)
        location = ResultsLocation(record.results_url)
        prefix = location.task_prefix(row.step, row.point)
        lines = [f"task {task}: {row.state} (attempt {row.attempt})"]
        if row.worker:
            lines.append(f"worker: {row.worker}")
        lines.append(f"output: {location.url(prefix)}")
        history = [e for e in self._task_events(campaign_id, row.step, row.point)]
        if history:
            lines.append("-- events")
            lines += [
                f"{e.seq:>6} {e.state or e.kind} attempt {e.attempt}"
                + (f": {e.message}" if e.message else "")
                for e in history
            ]
        if row.error:
            lines += ["-- error", row.error.rstrip()]
        for name in ("stdout.log", "stderr.log", "task.log"):
            try:
                data = location.read_bytes(f"{prefix}/{name}")
            except Exception:
                continue
            lines += [f"-- {name}", data[-tail:].decode("utf-8", "replace").rstrip()]
        return "\n".join(lines)

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
        self.store.request_cancel(campaign_id, step=step, point=point)

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
        if (parameters is None) == (points is None):
            raise InvalidRequest("give either parameters (a sub-grid) or points")
        record = self.store.get_campaign(campaign_id)
        if points is not None:
            try:
                block = Extension.from_points(points).model_dump(mode="json")
            except (ValueError, ValidationError) as exc:
                raise SpecError.single("points", str(exc)) from None
        else:
            block = {"parameters": parameters, "sweep": sweep}
        document = dict(record.spec)
        document["extensions"] = [*document.get("extensions", []), block]
        add_import_paths(record.import_paths or [])
        spec = parse_document(document)
        rerun = compile_plan(spec, introspect=False).rerun_on_extend()
        self.store.extend(campaign_id, spec.to_document(), len(spec.make_sweep()), rerun)
        return self.status(campaign_id)

    def restart(self, campaign_id: str) -> int:
        """Failed and cancelled tasks back to pending (InvalidRequest while a runner holds it)."""
        return self.store.restart(campaign_id)

    def delete(self, campaign_id: str) -> None:
        self.store.delete_campaign(campaign_id)

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

    def run(self, campaign_id: str, compute: Compute, progress: Progress | None = None) -> str:
        """Run (or resume) a campaign to its end on `compute`; returns the final state."""
        engine = Engine(
            self.store,
            compute.client,
            campaign_id,
            self.engine_config(),
            progress,
            compute=compute,
        )
        return engine.run()

    def registrar(self) -> Registrar:
        """Sends the store's outbox to the knowledge graph (start() it; close(drain=…))."""
        from orchestrator.kg.outbox import Registrar
        from orchestrator.kg.settings import open_knowledge_graph

        settings = self.settings
        return Registrar(self.store, lambda: open_knowledge_graph(settings.kg, settings.data_dir))

    def start_registrar(self) -> Registrar | RegistrarProcess:
        """The registrar as settings say (`kg.registrar`), started; None-safe `close(drain)`."""
        if self.settings.kg.registrar == "process":
            from orchestrator.kg.process import RegistrarProcess

            return RegistrarProcess(self.settings).start()
        return self.registrar().start()

    def unfinished(self, project: str | None = None) -> list[str]:
        return [r.id for r in self.store.unfinished_campaigns(project)]

    def exists(self, campaign_id: str) -> bool:
        try:
            self.store.get_campaign(campaign_id)
        except CampaignNotFound:
            return False
        return True


def parse_task_id(task: str) -> tuple[str, int | None]:
    """`summary`, `simulate/3`, `simulate:3` or `simulate[3]` → (step, point)."""
    match = _TASK_ID.match(task.strip())
    if not match:
        raise InvalidRequest(f"{task!r} is not a task (use STEP or STEP:POINT, e.g. simulate:3)")
    point = match.group("point")
    return match.group("step"), None if point is None else int(point)


def submit_paths(spec_path: str | os.PathLike[str] | None) -> list[str]:
    """The folders a spec's callables are imported from: the spec's folder and the cwd."""
    paths = [os.getcwd()]
    if spec_path is not None:
        folder = str(Path(spec_path).resolve().parent)
        if folder not in paths:
            paths.insert(0, folder)
    return paths
