"""A task's logs as people read them: its record, its events, its error, and the tail of the
log files in its output folder (stdout, stderr, `ctx.log`); and the task names they use."""

from __future__ import annotations

import re

from orchestrator.errors import InvalidRequest
from orchestrator.results import ResultsLocation
from orchestrator.store import EventRecord, TaskRecord

LOG_FILES = ("stdout.log", "stderr.log", "task.log")
_TASK_ID = re.compile(r"^(?P<step>[A-Za-z_]\w*)(?:(?:/|:|\[)(?P<point>\d+)\]?)?$")


def parse_task_id(task: str) -> tuple[str, int | None]:
    """`summary`, `simulate/3`, `simulate:3` or `simulate[3]` → (step, point)."""
    match = _TASK_ID.match(task.strip())
    if not match:
        raise InvalidRequest(f"{task!r} is not a task (use STEP or STEP:POINT, e.g. simulate:3)")
    point = match.group("point")
    return match.group("step"), None if point is None else int(point)


def task_logs(
    task: str,
    row: TaskRecord,
    history: list[EventRecord],
    location: ResultsLocation,
    tail: int,
) -> str:
    """The text of `orchestrator logs` and of the logs route; the last `tail` bytes of each
    log file, read without reading the rest of it (a file that cannot be read is left out)."""
    prefix = location.task_prefix(row.step, row.point)
    lines = [f"task {task}: {row.state} (attempt {row.attempt})"]
    if row.worker:
        lines.append(f"worker: {row.worker}")
    lines.append(f"output: {location.url(prefix)}")
    if history:
        lines.append("-- events")
        lines += [
            f"{e.seq:>6} {e.state or e.kind} attempt {e.attempt}"
            + (f": {e.message}" if e.message else "")
            for e in history
        ]
    if row.error:
        lines += ["-- error", row.error.rstrip()]
    for name in LOG_FILES:
        try:
            data = location.read_tail(f"{prefix}/{name}", tail)
        except Exception:
            continue
        lines += [f"-- {name}", data.decode("utf-8", "replace").rstrip()]
    return "\n".join(lines)
