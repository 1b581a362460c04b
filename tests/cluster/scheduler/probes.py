"""Task code that tries to reach beyond its task: imported by Dask workers (run steps call
these functions; command steps run this module). Each attempt's outcome is returned as text."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import cloudpickle
from distributed.diagnostics.plugin import SchedulerPlugin

SECRETS = {
    "ORCHESTRATOR_DB_URL": "postgresql://svc:db-password-1234@db.internal/orch",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-5678",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE",
    "ORCHESTRATOR_KG__TOKEN": "kg-token-9012",
}


class Planted(SchedulerPlugin):
    name = "planted"


def _outcome(call: Any) -> str:
    try:
        result = call()
    except BaseException as exc:  # every failure is an answer here
        return f"refused: {type(exc).__name__}: {exc}"
    return f"done: {result!r}"


def _scheduler_pid() -> int:
    return os.getpid()


async def _rpc(address: str, connection_args: dict[str, Any], op: str, **msg: Any) -> Any:
    from distributed.core import rpc

    async with rpc(address, connection_args=connection_args, timeout=20) as scheduler:
        return await getattr(scheduler, op)(**msg)


def probe_scheduler(**_: Any) -> dict[str, Any]:
    """From a task on a Dask worker: the worker's own address book and certificates, used
    to run code on the scheduler, to plant a scheduler plugin and to register a client."""
    from distributed import Client, get_worker

    worker = get_worker()
    address = worker.scheduler.address
    security = worker.security
    args = security.get_connection_args("worker")
    report: dict[str, Any] = {
        "scheduler": address,
        "environ": sorted(os.environ),
        "leaked": sorted(k for k, v in SECRETS.items() if v in "\0".join(os.environ.values())),
    }
    report["run_function"] = _outcome(
        lambda: asyncio.run(
            _rpc(
                address,
                args,
                "run_function",
                function=cloudpickle.dumps(_scheduler_pid),
                args=cloudpickle.dumps(()),
                kwargs=cloudpickle.dumps({}),
            )
        )
    )
    report["register_plugin"] = _outcome(
        lambda: asyncio.run(
            _rpc(
                address,
                args,
                "register_scheduler_plugin",
                plugin=cloudpickle.dumps(Planted()),
                name="planted",
                idempotent=False,
            )
        )
    )

    def client() -> str:
        with Client(address, security=security, timeout=20, set_as_default=False) as c:
            return str(c.run_on_scheduler(_scheduler_pid))

    report["client"] = _outcome(client)
    return report


def command_probe() -> None:
    """A `command` step: writes result.json with what the step's environment holds and what
    a client without the client's key gets from the scheduler."""
    from distributed import Client

    address = sys.argv[1]
    environ = "\0".join(os.environ.values())
    report: dict[str, Any] = {
        "environ": sorted(os.environ),
        "leaked": sorted(k for k, v in SECRETS.items() if v in environ),
    }
    report["client"] = _outcome(
        lambda: Client(address, timeout=5, set_as_default=False).run_on_scheduler(os.getpid)
    )
    with open("result.json", "w") as out:
        json.dump(report, out)


if __name__ == "__main__":
    command_probe()
