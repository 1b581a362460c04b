"""The scheduler's guard on a real scheduler over real mutual TLS: peers are told apart by the
role in their certificate; a worker's streams carry no client operation; a certificate from
another CA, or none, gets no connection at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from distributed import Scheduler
from distributed.core import rpc

from cluster.scheduler import guard
from cluster.scheduler.certificates import ComputeCertificates, Role, role_of
from cluster.scheduler.guard import Refused, install_guard


async def _with_scheduler(certs: ComputeCertificates, body: Any) -> Any:
    scheduler = Scheduler(
        security=certs.security(Role.SCHEDULER),
        protocol="tls",
        host="127.0.0.1",
        dashboard=False,
        dashboard_address="127.0.0.1:0",
    )
    install_guard(scheduler)
    async with scheduler:
        return await body(scheduler)


def _call(scheduler: Scheduler, security: Any, role: str, op: str, **msg: Any) -> Any:
    async def call() -> Any:
        args = security.get_connection_args(role)
        async with rpc(scheduler.address, connection_args=args, timeout=10) as peer:
            return await getattr(peer, op)(**msg)

    return call()


def test_roles_decide_what_a_peer_may_call() -> None:
    certs = ComputeCertificates.create("test")

    async def body(scheduler: Scheduler) -> None:
        worker, client = certs.security(Role.WORKER), certs.security(Role.CLIENT)
        assert (await _call(scheduler, worker, "worker", "identity"))["type"] == "Scheduler"
        for op, msg in [
            ("terminate", {}),
            ("broadcast", {"msg": {"op": "terminate"}}),
            ("retire_workers", {}),  # "any workers": the client's decision
            ("get_metadata", {"keys": ["x"]}),  # an operation no worker needs
            ("connection_stream", {}),
        ]:
            with pytest.raises(Exception, match="only the service's client"):
                await _call(scheduler, worker, "worker", op, **msg)
        assert await _call(scheduler, client, "client", "ncores") == {}
        await _call(scheduler, client, "client", "set_metadata", keys=["x"], value=1)
        assert await _call(scheduler, client, "client", "get_metadata", keys=["x"]) == 1

    asyncio.run(_with_scheduler(certs, body))


def test_no_connection_without_a_certificate_of_this_compute() -> None:
    certs = ComputeCertificates.create("test")
    stranger = ComputeCertificates.create("other").security(Role.CLIENT)

    async def body(scheduler: Scheduler) -> None:
        with pytest.raises(OSError):
            await _call(scheduler, stranger, "client", "identity")

    asyncio.run(_with_scheduler(certs, body))


def test_client_stream_operations_are_refused_on_a_workers_stream() -> None:
    certs = ComputeCertificates.create("test")

    async def body(scheduler: Scheduler) -> None:
        update_graph = scheduler.stream_handlers["update-graph"]
        guard._peer.set((Role.WORKER, "tls://127.0.0.1:1"))
        with pytest.raises(Refused, match="update-graph"):
            await update_graph(client="forged", graph_header={}, graph_frames=[])
        with pytest.raises(Refused, match="cancel-keys"):
            scheduler.stream_handlers["cancel-keys"](keys=[], client="forged")
        # the worker's own stream operations stay
        scheduler.stream_handlers["keep-alive"]()

    asyncio.run(_with_scheduler(certs, body))


def test_role_of_reads_the_subject() -> None:
    subject = ((("organizationName", "orchestrator"),), (("commonName", "client"),))
    assert role_of({"subject": subject}) is Role.CLIENT
    assert role_of({"subject": ((("commonName", "client"),),)}) is None  # not ours
    assert role_of(None) is None
