"""The code that runs on a Dask worker for one task attempt.

It never raises for a failure of the user's code: the failure travels back in the Outcome,
so the engine collects successes and failures alike in one batched gather.
"""

from __future__ import annotations

import ctypes
import inspect
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cluster.environment import task_environment
from orchestrator.context import TaskContext
from orchestrator.engine.outcome import Outcome, encode, unwrap
from orchestrator.errors import CommandFailed, TaskTimeout
from orchestrator.results import ResultsLocation, upload
from orchestrator.results.attempts import fresh_task_folder
from orchestrator.spec import shell_template
from orchestrator.spec.callables import select_keywords
from orchestrator.spec.shell_template import as_text
from orchestrator.spec.validate import import_callable

STARTED_TOPIC = "orchestrator-task-started"
LOG_FILES = ("stdout.log", "stderr.log", "task.log")
LOG_DEADLINE = 30.0
"""Seconds spent keeping a failed task's logs (its outputs are not kept)."""
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class TaskCall:
    campaign_id: str
    step: str
    kind: str  # run | command
    target: str  # "module:function", or the command template
    point: int | None
    attempt: int
    results_url: str
    parameters: dict[str, Any] = field(default_factory=dict)
    with_: dict[str, Any] = field(default_factory=dict)
    pass_params: tuple[str, ...] | None = None  # None: all (the callable has **kwargs)
    pass_ctx: bool = False
    keywords_known: bool = True  # False: pass_params/pass_ctx read off the imported callable
    timeout: float | None = None
    store_limit: int = 65536
    inline_limit: int = 1 << 20
    import_paths: tuple[str, ...] = ()
    upload_deadline: float | None = None  # None: orchestrator.results.upload.UPLOAD_DEADLINE
    upload_block_size: int | None = None  # None: orchestrator.results.upload.BLOCK_SIZE


def execute_task(call: TaskCall, upstream: dict[str, Any]) -> Outcome:
    started = time.time()
    worker = _announce_start(call, started)
    try:
        return _execute(call, upstream, started, worker)
    finally:
        _ANNOUNCER.finished(call)


def _execute(
    call: TaskCall, upstream: dict[str, Any], started: float, worker: str | None
) -> Outcome:
    staging: tempfile.TemporaryDirectory[str] | None = None
    location: ResultsLocation | None = None
    output_dir: Path | None = None
    prefix = ""
    try:
        location = task_location(call.results_url)
        prefix = location.task_prefix(call.step, call.point)
        if location.is_local:  # only this attempt's files: an earlier one's are set aside
            output_dir = fresh_task_folder(Path(location.path(prefix)), call.attempt)
        else:  # files are staged on the worker and stored when the task has succeeded
            staging = tempfile.TemporaryDirectory(prefix="orchestrator-task-")
            output_dir = Path(staging.name)
        ctx = TaskContext(
            campaign_id=call.campaign_id,
            step=call.step,
            point=call.point,
            parameters=call.parameters,
            attempt=call.attempt,
            output_dir=output_dir,
            output_url=location.url(prefix),
        )
        if call.kind == "command":
            value = _run_command(call, ctx, upstream)
        else:
            value = _run_callable(call, ctx, upstream)
        stored, data, filename = encode(value, call.store_limit)
        result_url = None
        if data is not None and location.is_local:
            result_url = location.write_bytes(f"{prefix}/{filename}", data)
        elif data is not None:
            (output_dir / filename).write_bytes(data)
            result_url = location.url(f"{prefix}/{filename}")
        # the task succeeds only once every file is stored (and verified, when remote)
        outputs = location.store_dir(
            output_dir,
            prefix,
            deadline=call.upload_deadline,
            block_size=call.upload_block_size,
        )
        inline = data is None or len(data) <= call.inline_limit
        return Outcome(
            ok=True,
            value=value if inline else None,
            inline=inline,
            stored=stored,
            result_url=result_url,
            started_at=started,
            finished_at=time.time(),
            worker=worker,
            outputs=[o.to_dict() for o in outputs],
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit) and not isinstance(exc, TaskTimeout):
            raise
        if staging is not None and location is not None and output_dir is not None:
            _keep_logs(location, output_dir, prefix, call)
        return Outcome(
            ok=False,
            error=_describe(exc),
            started_at=started,
            finished_at=time.time(),
            worker=worker,
        )
    finally:
        if staging is not None:
            staging.cleanup()


def _keep_logs(location: ResultsLocation, output_dir: Path, prefix: str, call: TaskCall) -> None:
    """A failed task's logs still go to the results location (`orchestrator logs`)."""
    logs = [name for name in LOG_FILES if (output_dir / name).is_file()]
    if not logs:
        return
    deadline = min(LOG_DEADLINE, call.upload_deadline or upload.UPLOAD_DEADLINE)
    try:
        location.store_dir(output_dir, prefix, deadline=deadline, only=logs)
    except Exception as exc:  # the task's own error matters more
        logger.warning("could not keep the logs of a failed task: %s", exc)


def _announce_start(call: TaskCall, started: float) -> str | None:
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not on a Dask worker (direct call, tests)
        return None
    _ANNOUNCER.started(
        worker,
        {
            "c": call.campaign_id,
            "s": call.step,
            "p": call.point,
            "a": call.attempt,
            "t": started,
            "w": worker.address,
        },
    )
    return str(worker.address)


class _Announcer:
    """Tells the engine which tasks started, in batches per worker process.

    A task that finishes before the next batch is dropped from it: its outcome carries its
    start time, so the engine records `running` anyway, and short tasks cost no message.
    """

    interval = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, int | None, int], dict[str, Any]] = {}
        self._worker: Any = None
        self._thread: threading.Thread | None = None

    def started(self, worker: Any, msg: dict[str, Any]) -> None:
        with self._lock:
            self._worker = worker
            self._pending[(msg["c"], msg["s"], msg["p"], msg["a"])] = msg
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="orchestrator-announcer", daemon=True
                )
                self._thread.start()

    def finished(self, call: TaskCall) -> None:
        with self._lock:
            self._pending.pop((call.campaign_id, call.step, call.point, call.attempt), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                batch, self._pending = list(self._pending.values()), {}
                worker = self._worker
            if batch and worker is not None:
                try:
                    worker.log_event(STARTED_TOPIC, {"batch": batch})
                except Exception:  # the worker is closing: the outcomes still tell
                    return


_ANNOUNCER = _Announcer()


@lru_cache(maxsize=64)
def task_location(url: str) -> ResultsLocation:
    return ResultsLocation(url, on_cluster=True)  # tasks run on the cluster


@lru_cache(maxsize=256)
def _callable(target: str, import_paths: tuple[str, ...]) -> Any:
    for path in import_paths:  # where the campaign was submitted from
        if path not in sys.path and os.path.isdir(path):
            sys.path.append(path)
    return import_callable(target)


def _run_callable(call: TaskCall, ctx: TaskContext, upstream: dict[str, Any]) -> Any:
    func = _callable(call.target, call.import_paths)
    if not call.keywords_known:
        call.pass_params, call.pass_ctx = _keywords_of(func, call)
    if call.pass_params is None:
        kwargs = dict(call.parameters)
    else:
        kwargs = {name: call.parameters[name] for name in call.pass_params}
    kwargs.update(call.with_)
    kwargs.update({name: unwrap(value) for name, value in upstream.items()})
    if call.pass_ctx:
        kwargs["ctx"] = ctx
    if call.timeout is None:
        return func(**kwargs)
    return _with_deadline(func, kwargs, call.timeout)


def _keywords_of(func: Any, call: TaskCall) -> tuple[tuple[str, ...] | None, bool]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # no signature to read: every parameter, no ctx
        signature = None
    return select_keywords(signature, list(call.parameters), call.point is not None)


def _with_deadline(func: Any, kwargs: dict[str, Any], timeout: float) -> Any:
    """Raise TaskTimeout inside this thread when the call outlives `timeout`.

    Python code is interrupted at its next bytecode; a long call into C (a simulator's
    inner loop) is interrupted when it returns to Python.
    """
    thread_id = threading.get_ident()
    lock = threading.Lock()
    finished = False

    def expire() -> None:
        with lock:
            if not finished:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(TaskTimeout)
                )

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        result = func(**kwargs)
        with lock:
            finished = True
    except TaskTimeout:
        raise TaskTimeout(f"timed out after {timeout:g}s") from None
    finally:
        timer.cancel()
        with lock:
            finished = True
            # drop an exception that was set but not yet raised
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
    return result


MAX_COMMAND_BYTES = 131072
"""The longest single argument Linux passes to a process (MAX_ARG_STRLEN): `bash -c` takes the
whole command as one."""


def render_template(template: str, values: dict[str, Any]) -> str:
    """`{{ name }}` → the value, escaped for the shell quoting it sits in (a value is always
    literal text; see orchestrator.spec.shell_template); `${VAR}` and the rest untouched."""
    return shell_template.render(template, values)


def _run_command(call: TaskCall, ctx: TaskContext, upstream: dict[str, Any]) -> Any:
    values: dict[str, Any] = {
        **call.parameters,
        **call.with_,
        **{name: as_text(unwrap(value)) for name, value in upstream.items()},
        "output_dir": ctx.output_dir,
        "point": "" if call.point is None else call.point,
        "attempt": call.attempt,
        "campaign_id": call.campaign_id,
        "step": call.step,
    }
    script = render_template(call.target, values)
    size = len(script.encode())
    if size > MAX_COMMAND_BYTES:
        raise ValueError(
            f"the command is {size} bytes once its placeholders are filled, "
            f"more than a command line holds ({MAX_COMMAND_BYTES}): pass large upstream "
            "results through files (a run step, or the upstream step's output folder)"
        )
    # the allow-listed environment only: never what the worker (or a service) inherited
    env = task_environment(
        ORCHESTRATOR_OUTPUT_DIR=str(ctx.output_dir),
        ORCHESTRATOR_POINT="" if call.point is None else str(call.point),
        ORCHESTRATOR_ATTEMPT=str(call.attempt),
    )
    out_path, err_path = ctx.output_dir / "stdout.log", ctx.output_dir / "stderr.log"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ctx.output_dir,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=call.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TaskTimeout(f"timed out after {call.timeout:g}s") from None
    if returncode != 0:
        raise CommandFailed(returncode, _tail(err_path))
    result_file = ctx.output_dir / "result.json"
    if result_file.exists():
        import json

        return json.loads(result_file.read_text())
    return None


def _tail(path: Path, size: int = 4000) -> str:
    data = path.read_bytes()[-size:]
    return data.decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TaskTimeout | CommandFailed):
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:]
