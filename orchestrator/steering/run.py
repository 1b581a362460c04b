"""A handle on one campaign: progress, results while it runs, extend, cancel, throttle, wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.states import CAMPAIGN_TERMINAL, TASK_ACTIVE, TaskState
from orchestrator.steering.progress import ProgressBars

if TYPE_CHECKING:
    import pandas as pd

    from orchestrator.backends import Backend

Where = Callable[[dict[str, Any]], bool] | Mapping[str, Any]


class Run:
    def __init__(self, backend: Backend, campaign_id: str):
        self.backend = backend
        self.id = campaign_id

    def __repr__(self) -> str:
        status = self.status()
        return f"<Run {self.id} {status['name']}: {status['state']}, {status['points']} points>"

    # ------------------------------------------------------------------ read
    def status(self) -> dict[str, Any]:
        return self.backend.status(self.id)

    @property
    def state(self) -> str:
        return str(self.status()["state"])

    @property
    def dashboard_link(self) -> str | None:
        return self.backend.dashboard_link()

    def results(self, step: str | None = None) -> pd.DataFrame:
        """One row per point with a finished task: its parameters and each foreach step's
        result (dict results spread over `step.key` columns). Works while it runs."""
        import pandas as pd

        rows: dict[int, dict[str, Any]] = {}
        for task in self.backend.tasks(self.id, step, TaskState.SUCCEEDED):
            point = task.get("point")
            if point is None:
                continue
            row = rows.setdefault(point, {"point": point, **(task.get("parameters") or {})})
            result = task.get("result")
            if isinstance(result, Mapping):
                row.update({f"{task['step']}.{k}": v for k, v in result.items()})
            else:
                row[task["step"]] = result
        frame = pd.DataFrame(sorted(rows.values(), key=lambda r: r["point"]))
        return frame.set_index("point") if not frame.empty else frame

    def result(self, step: str) -> Any:
        """The result of a step without foreach (a fan-in), once it succeeded."""
        for task in self.backend.tasks(self.id, step, TaskState.SUCCEEDED):
            if task.get("point") is None:
                return task.get("result")
        return None

    def events(self, follow: bool = False) -> Iterator[dict[str, Any]]:
        return self.backend.events(self.id, 0, follow)

    def logs(self, task: str) -> str:
        return self.backend.logs(self.id, task)

    def failed(self) -> list[dict[str, Any]]:
        return list(self.backend.tasks(self.id, None, TaskState.FAILED))

    # ----------------------------------------------------------------- steer
    def extend(
        self,
        points: list[Mapping[str, Any]] | None = None,
        *,
        sweep: str = "product",
        **parameters: Any,
    ) -> Run:
        """Add points: `extend(points=[{...}, ...])`, or a sub-grid with one axis per
        parameter: `extend(amplitude=np.linspace(0.05, 0.07, 11), gnabar=[0.12])`."""
        if points is not None and parameters:
            raise ValueError("give points or a sub-grid, not both")
        if points is not None:
            self.backend.extend(self.id, points=[_plain(dict(p)) for p in points])
        else:
            axes = {k: _axis(v) for k, v in parameters.items()}
            self.backend.extend(self.id, parameters=axes, sweep=sweep)
        return self

    def cancel(self, where: Where | None = None, *, step: str | None = None) -> int:
        """Cancel the campaign; or a step (and what needs it); or the points `where` selects
        (a function of a point's parameters, or {name: value}). Returns points cancelled.

        On the embedded default `where` sees every point not finished yet; through a server it
        sees the points that have started (the REST API lists tasks, not the sweep)."""
        if where is None:
            self.backend.cancel(self.id, step, None)
            return 0
        match = where if callable(where) else _equals(where)
        points = {
            task["point"]: task.get("parameters") or {}
            for task in self.backend.tasks(self.id, None, None)
            if task.get("point") is not None and task.get("state") in TASK_ACTIVE
        }
        chosen = [p for p, params in points.items() if match(params)]
        # points not started yet: listed on the embedded default, not through a server
        pending = self.backend.unstarted_points(self.id, set(points))
        chosen += [p for p, params in pending if match(params)]
        for point in sorted(set(chosen)):
            self.backend.cancel(self.id, step, point)
        return len(set(chosen))

    def throttle(self, limit: int, *, step: str | None = None) -> Run:
        """At most `limit` points in flight from now on (never above the service's window);
        or, with `step` (a batch step), at most `limit` tasks of each of its job arrays at
        once, queued arrays included. Kept with the campaign, across resume."""
        self.backend.throttle(self.id, limit, step)
        return self

    def restart(self) -> Run:
        self.backend.restart(self.id)
        return self

    # ------------------------------------------------------------------ wait
    def wait(self, timeout: float | None = None, poll: float = 0.5) -> dict[str, Any]:
        """Until it ends; its final status (TimeoutError after `timeout` s: it goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if status["state"] in CAMPAIGN_TERMINAL:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"campaign {self.id} is still {status['state']}")
            time.sleep(poll)

    def progress(self, poll: float = 0.5) -> dict[str, Any]:
        """Live progress per step until it ends (a widget in Jupyter, bars in a terminal)."""
        with ProgressBars() as bars:
            while True:
                status = self.status()
                bars.update(status["steps"])
                if status["state"] in CAMPAIGN_TERMINAL:
                    return status
                time.sleep(poll)


def _equals(values: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda params: all(params.get(k) == v for k, v in values.items())


def _axis(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list | tuple | range):
        return [_plain(v) for v in value]
    return [_plain(value)]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays → Python values (JSON and the store need them)."""
    if hasattr(value, "item") and not isinstance(value, list | dict):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
