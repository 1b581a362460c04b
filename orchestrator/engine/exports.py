"""When the engine exports a campaign's results from Lustre to S3, and how it hears back.

The FSx work is in `orchestrator.results.exports` (and its API calls in
`orchestrator.results.fsx`); this module ties it to one run: a step is exported once, when
its every task has ended; the export's own events go through the engine's recorder, so
they are committed with the campaign's other events; the whole campaign is exported at the
end only after every result is durable in the store and in the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator.engine.manifest import Manifest
from orchestrator.engine.plan import Plan
from orchestrator.engine.recorder import Recorder
from orchestrator.engine.slots import Counts
from orchestrator.engine.state import RunState
from orchestrator.results.exports import ExportConfig, Exports
from orchestrator.states import TASK_TERMINAL
from orchestrator.store import EventWrite


class ExportSchedule:
    @classmethod
    def create(
        cls, config: ExportConfig | None, state: RunState, manifest: Manifest
    ) -> ExportSchedule | None:
        """The schedule of a campaign whose results are on the exported file system; None
        for any other campaign."""
        folder = state.location.cluster_path
        if config is None or not config.covers(folder):
            return None
        assert folder is not None
        history = state.store.events(state.campaign_id, kind="export", limit=10**6)
        recorder = state.recorder

        def on_event(step: str | None, export_state: str, message: str) -> None:
            recorder.event(
                EventWrite(time.time(), "export", step, None, export_state, None, message)
            )

        exports = Exports(config, state.campaign_id, folder, on_event, history)
        return cls(exports, state.plan, state.counts, recorder, manifest)

    def __init__(
        self,
        exports: Exports,
        plan: Plan,
        counts: Counts,
        recorder: Recorder,
        manifest: Manifest,
    ):
        self.exports = exports
        self.plan = plan
        self.counts = counts
        self.recorder = recorder
        self.manifest = manifest
        # steps whose every task ended (exported once each, as they end)
        self.ended_steps = {name for name in plan.steps if self._step_ended(name)}

    def note_outputs(self, outputs: list[dict[str, Any]]) -> None:
        """On Lustre: each file is also listed where the export puts it."""
        for output in outputs:
            exported = self.exports.exported_url(output["url"])
            if exported is not None:
                output["exported_url"] = exported

    def after_task(self, step: str) -> None:
        if step not in self.ended_steps and self._step_ended(step):
            self.ended_steps.add(step)
            self.exports.after_step(step)

    def at_end(self, tick: Callable[[], None], every: float) -> list[str]:
        """Every result durable in the store and the manifest, then exported to S3; the
        failures."""
        self.recorder.flush()
        self.manifest.flush()
        return self.exports.at_end(tick, every)

    def _step_ended(self, step: str) -> bool:
        ended = sum(self.counts.get(step, s) for s in TASK_TERMINAL)
        return ended >= self.plan.total(step)
