"""The entry point of a Dask scheduler or of local Dask workers in a process of their own:
`python -m cluster.scheduler.child`.

The starter writes one JSON line on stdin: the role (`scheduler` or `workers`), the TLS fields
of that role (kept in memory here, never written to a file) and the options. Once listening,
this process writes one JSON line (its addresses) on the pipe whose descriptor is its
argument, then watches stdin: when stdin closes (the starter closed it, or the starter died
and the kernel closed it) the scheduler or the workers close and the process exits. SIGTERM
does the same. Its stdout and stderr are the service's stderr.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

import dask
from distributed import Nanny, Scheduler, Worker
from distributed.security import Security

logger = logging.getLogger("cluster.scheduler.child")

# The scheduler's HTTP server: no route that acts (the `api` routes retire workers) and no
# proxy to other hosts; the dashboard, health and metrics stay.
HTTP_ROUTES = [
    "distributed.http.scheduler.prometheus",
    "distributed.http.scheduler.info",
    "distributed.http.scheduler.json",
    "distributed.http.health",
    "distributed.http.statics",
]
CLOSE_TIMEOUT = 10.0


async def _until_closed() -> None:
    """Returns when stdin reaches its end or SIGTERM arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # os.read holds no lock a forked worker process could inherit held (nannies fork)
    threading.Thread(
        target=_read_to_end, args=(loop, stop), name="stdin-watch", daemon=True
    ).start()
    await stop.wait()


def _read_to_end(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    loop.call_soon_threadsafe(stop.set)


_REPLY_FD: list[int] = []


def _report(message: dict[str, Any]) -> None:
    """The one line the starter waits for, on the pipe it passed (then closed)."""
    fd = _REPLY_FD.pop()
    os.write(fd, (json.dumps(message) + "\n").encode())
    os.close(fd)


async def run_scheduler(
    security: Security, options: dict[str, Any], pages: list[dict[str, Any]]
) -> None:
    from cluster.scheduler.guard import install_guard

    modules = []
    for page in pages:  # before the scheduler: Dask builds its dashboard's pages then
        try:
            module = importlib.import_module(page["module"])
            module.register(**page.get("options", {}))
            modules.append(module)
        except Exception:
            logger.warning("no dashboard page %s", page["module"], exc_info=True)
    scheduler = Scheduler(security=security, protocol="tls", **options)
    for module in modules:
        module.attach(scheduler)
    install_guard(scheduler)  # last: it wraps every handler, the pages' too
    async with scheduler:
        dashboard = scheduler.identity()["services"].get("dashboard")
        _report({"address": scheduler.address, "dashboard": dashboard, "pid": os.getpid()})
        await _until_closed()
        await asyncio.wait_for(scheduler.close(reason="compute closed"), CLOSE_TIMEOUT)
    _exit()


async def run_workers(security: Security, scheduler: str, options: dict[str, Any]) -> None:
    count = int(options.pop("n_workers", 1))
    cls = Nanny if options.pop("nanny", True) else Worker
    workers = [cls(scheduler, security=security, protocol="tls", **options) for _ in range(count)]
    await asyncio.gather(*workers)
    _report({"addresses": [w.address for w in workers], "pid": os.getpid()})
    await _until_closed()
    await asyncio.wait_for(
        asyncio.gather(*(w.close(reason="compute closed") for w in workers)),
        CLOSE_TIMEOUT,
    )
    _exit()


def _exit(code: int = 0) -> None:
    """Leave now: the thread still reading stdin would keep asyncio.run waiting."""
    logging.shutdown()
    os._exit(code)


def _read_line(fd: int) -> bytes:
    """One line from `fd`, read unbuffered: what follows it is the watch on stdin."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return line


def main() -> None:
    _REPLY_FD.append(int(sys.argv[1]))
    request = json.loads(_read_line(0))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    dask.config.set(
        {
            "distributed.scheduler.http.routes": HTTP_ROUTES,
            "distributed.comm.require-encryption": True,
            "distributed.worker.daemon": True,
            # a worker process forked from this one starts in a fraction of the time a
            # spawned one takes (it re-imports nothing); this process holds no secret to copy
            "distributed.worker.multiprocessing-method": "fork",
            **request.get("config", {}),
        }
    )
    security = Security(require_encryption=True, **request["security"])
    try:
        if request["role"] == "scheduler":
            asyncio.run(run_scheduler(security, request["options"], request.get("pages", [])))
        elif request["role"] == "workers":
            asyncio.run(run_workers(security, request["scheduler"], request["options"]))
        else:
            raise ValueError(f"unknown role {request['role']!r}")
    except BaseException:  # said in the service's log; the starter sees no reply
        logger.exception("the %s process failed", request.get("role"))
        _exit(1)


if __name__ == "__main__":
    main()
