"""Who may do what on the scheduler: installed on the scheduler before it listens.

Every peer authenticates with a certificate of the compute's CA that names its role (see
`cluster.scheduler.certificates`). The service's client may do everything. Any other peer, a
worker or a nanny (or task code that found a worker's key), may only call the operations a
worker needs: an allow-list, so that an operation added by a later Dask release or by an
extension is refused until someone decides otherwise. Refused, among others: `register-client`
(a client submits graphs, which the scheduler unpickles), `run_function`, `feed`,
(un)registering scheduler, worker or nanny plugins, `terminate`, `restart`, `broadcast`,
`proxy`, `rebalance`, `replicate`, `scatter`, `gather`, `dump_cluster_state_to_url`,
`benchmark_hardware`, and the extensions' handlers.

On the batched streams (one per client and one per worker, sharing one handler table) the
client stream's operations (`update-graph`, `cancel-keys`, …) are refused unless the stream
belongs to the client. Refusals are logged here and reach the caller as an error.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable
from typing import Any

from distributed import Scheduler
from distributed.comm import Comm
from distributed.comm.addressing import get_address_host
from distributed.core import Status
from distributed.utils import has_keyword

from cluster.scheduler.certificates import Role, role_of

logger = logging.getLogger("cluster.scheduler.guard")

WORKER_OPERATIONS = frozenset(
    {
        "register-worker",  # then the worker's batched stream
        "register_nanny",
        "heartbeat_worker",
        "who_has",
        "log_event",
        "identity",
        "echo",
        "versions",
        "ncores",
    }
)
"""What a worker or a nanny asks the scheduler (distributed's worker.py and nanny.py)."""

OWN_HOST_OPERATIONS = frozenset({"unregister", "retire_workers"})
"""A worker leaving (its `--lifetime`, a nanny closing): allowed for workers on the caller's
own host only."""

CLIENT_STREAM_OPERATIONS = frozenset(
    {
        "update-graph",
        "client-desires-keys",
        "update-data",
        "report-key",
        "client-releases-keys",
        "heartbeat-client",
        "close-client",
        "subscribe-topic",
        "unsubscribe-topic",
        "cancel-keys",
    }
)

_peer: contextvars.ContextVar[tuple[Role | None, str]] = contextvars.ContextVar(
    "orchestrator_scheduler_peer", default=(None, "")
)


class Refused(PermissionError):
    pass


def install_guard(scheduler: Scheduler) -> None:
    """Wrap every handler of `scheduler` (RPC and stream) with the role check."""
    for op, handler in list(scheduler.handlers.items()):
        scheduler.handlers[op] = _guard_operation(op, handler)
    for op, handler in list(scheduler.stream_handlers.items()):
        if op in CLIENT_STREAM_OPERATIONS:
            scheduler.stream_handlers[op] = _guard_client_stream(op, handler)


def _role(comm: Comm) -> Role | None:
    return role_of((comm.extra_info or {}).get("peercert"))


def _guard_operation(op: str, handler: Callable[..., Any]) -> Any:
    expects_comm = _expects_comm(handler)

    async def guarded(comm: Comm, **msg: Any) -> Any:  # serializers, if any, are in msg
        role = _role(comm)
        _peer.set((role, comm.peer_address))
        if role is not Role.CLIENT and not _allowed(op, role, comm, msg):
            reason = (
                f"the scheduler refuses {op!r} from {comm.peer_address}: only the service's "
                f"client may do this (the peer's certificate names {role or 'no role'})"
            )
            logger.warning(reason)
            if op == "register-client":  # the client reads a stream-start, not a reply
                await comm.write([{"op": "stream-start", "error": reason}])
                await comm.close()
                return Status.dont_reply
            raise Refused(reason)
        result = handler(comm, **msg) if expects_comm else handler(**msg)
        if inspect.isawaitable(result):
            result = await result
        return result

    # distributed reads a handler's signature: `comm` first, and `serializers` if it takes them
    params = [inspect.Parameter("comm", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if has_keyword(handler, "serializers"):
        params.append(
            inspect.Parameter("serializers", inspect.Parameter.KEYWORD_ONLY, default=None)
        )
    params.append(inspect.Parameter("msg", inspect.Parameter.VAR_KEYWORD))
    guarded.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    guarded.__name__ = getattr(handler, "__name__", op)
    return guarded


def _allowed(op: str, role: Role | None, comm: Comm, msg: dict[str, Any]) -> bool:
    if role not in (Role.WORKER, Role.SCHEDULER):
        return False
    if op in WORKER_OPERATIONS:
        return True
    if op in OWN_HOST_OPERATIONS:
        named = msg.get("workers") if op == "retire_workers" else [msg.get("address")]
        if not named or not isinstance(named, list | tuple):
            return False  # "retire any workers" is the client's decision
        host = get_address_host(comm.peer_address)
        return all(isinstance(a, str) and get_address_host(a) == host for a in named)
    return False


def _guard_client_stream(op: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    def refuse() -> None:
        role, peer = _peer.get()
        reason = (
            f"the scheduler refuses {op!r} on the stream of {peer or 'a peer'}: "
            f"only the service's client may send it (the peer's certificate names "
            f"{role or 'no role'})"
        )
        logger.warning(reason)
        raise Refused(reason)

    if inspect.iscoroutinefunction(handler):

        async def guarded_async(**msg: Any) -> Any:
            if _peer.get()[0] is not Role.CLIENT:
                refuse()
            return await handler(**msg)

        return guarded_async

    def guarded(**msg: Any) -> Any:
        if _peer.get()[0] is not Role.CLIENT:
            refuse()
        return handler(**msg)

    return guarded


def _expects_comm(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return bool(params) and next(iter(params)) == "comm"
