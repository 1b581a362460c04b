"""Serving the app with uvicorn, stopping within seconds of SIGTERM or Ctrl-C.

uvicorn's orderly stop waits for every open connection (a live event stream never ends by
itself) and then for the app's shutdown; here open connections get one second, and the
first signal also arms `orchestrator.shutdown`'s deadline, which ends the process when the
orderly stop takes longer than the grace (ECS and systemd kill after 30 s anyway).
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from orchestrator.shutdown import exit_by

CONNECTIONS_GRACE = 1  # seconds open requests (event streams) get once the stop begins


class _Server(uvicorn.Server):
    grace: float = 3.0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        exit_by(self.grace, 128 + int(sig))
        super().handle_exit(sig, frame)


def run_server(app: FastAPI, host: str, port: int, grace: float) -> None:
    """Serve `app` until SIGTERM or SIGINT; the process ends within `grace` seconds of it."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=CONNECTIONS_GRACE,
    )
    server = _Server(config)
    server.grace = grace
    server.run()


__all__ = ["run_server"]
