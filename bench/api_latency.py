"""REST API latency under 50 concurrent clients, idle vs while a 5000-task campaign runs,
and the throughput of the live event stream to 10 subscribers.

    .venv/bin/python bench/api_latency.py                 # ~1.5 min on 2 cores
    .venv/bin/python bench/api_latency.py --client httpx  # the same load sent with httpx

The server is real: `orchestrator serve --port P` as a child process in its own process
group, run from the repository root with PYTHONPATH=. (so `bench.workloads:noop` imports),
ORCHESTRATOR_DATA_DIR in a temp dir, its LocalCluster 2 workers x 1 thread (processes, no
dashboard); the token comes from `orchestrator token --project lab/p1`. Campaigns are
submitted over HTTP: `bench.workloads:noop` foreach over range(5000).

(a) idle: GET /v1/projects/lab/p1/campaigns/{id} of a finished 5000-task campaign (the
    warm-up one, which also started the cluster) by 50 concurrent clients, each on its own
    keep-alive connection, each sending its next request as soon as the previous one is
    answered (closed loop), for --duration seconds after a --warmup.
(b) busy: the same against a second 5000-task campaign while it runs (measurement starts
    when it is `running` and stops early if it ends).
    Target: p99 < 100 ms in both. The API serves this route from its status cache
    (api/status_cache.py: one store read per campaign per 0.5 s, however many clients), so
    in (b) the counts the clients see lag the campaign by up to 0.5 s.
    Also shown: the share of those requests that spent <= 100 ms inside the app (its own
    `orchestrator_http_request_seconds` histogram on /metrics: waits for its thread pool and
    the GIL count, the socket and uvicorn's parsing do not), one client alone (the service
    time, no queueing), and GET /healthz with the same 50 clients (the floor of uvicorn plus
    this load generator).
(c) events: a third 5000-task campaign watched by 10 subscribers of GET .../events with
    `Accept: text/event-stream`, from its first event until the stream ends with the campaign:
    events/s per subscriber and in total, delivery lag (receive time minus the event's own
    time), and whether every subscriber got every event, in order (required). Then the same 10
    subscribers replay the finished campaign's history (the stream's capacity). No target.

The load generator shares the 2 cores with the server, its scheduler and its 2 workers, so
by default it is a minimal HTTP/1.1 client on asyncio streams (~0.1 ms of CPU per request
here). httpx.AsyncClient (`--client httpx`) costs ~2.5 ms of CPU per request here: at 50
clients it takes a whole core from the server and mostly measures itself.

    .venv/bin/python bench/api_latency.py --front-door    # ~3-6 min: front door vs all-in-one

`--front-door` measures instead GET status (as in (b)) on a front door whose campaigns run in
another process (the project's instance, on the same store), side by side with the all-in-one
`serve` running the campaign itself (bench/_front_door.py, where the commands are).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import (
    ORCHESTRATOR,
    REPO,
    kill_group,
    orchestrator_env,
    run_child,
    table,
    verdict,
)

TARGET_P99 = 0.100
PROJECT = "lab/p1"
BASE = f"/v1/projects/{PROJECT}/campaigns"
CAMPAIGN_ROUTE = "/v1/projects/{vlab_id}/{project_id}/campaigns/{campaign_id}"
TERMINAL = {"succeeded", "failed", "cancelled"}
SINGLE_SECONDS = 3.0  # one client alone: the service time, without queueing


# --------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [ORCHESTRATOR, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the server and its cluster
        )


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM to the server (uvicorn shuts down: the app closes its runner and cluster), then
    SIGKILL to whatever is left of the process group we started, and reap the server."""
    if not _exited(proc):
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not _exited(proc):
            time.sleep(0.2)
        if not _exited(proc):
            kill_group(proc)  # the whole group, then reaps the server
            return
    # exited but not reaped yet: its pid, hence our group id, cannot have been reused
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    proc.wait()


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it (so its group id stays ours)."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- load generator
class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: GET, read the whole answer
    (Content-Length or chunked). Just enough for this server, at ~0.1 ms of CPU a request."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _send(self, path: str, accept: str) -> tuple[int, dict[bytes, bytes]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nAccept: {accept}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        return int(lines[0].split()[1]), headers

    async def _body(self, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        assert self.reader is not None
        if b"content-length" in headers:
            yield await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                yield await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")  # no trailers
        if headers.get(b"connection") == b"close":
            await self.close()

    async def get(self, path: str) -> int:
        try:
            code, headers = await self._send(path, "application/json")
            async for _ in self._body(headers):
                pass
            return code
        except BaseException:
            await self.close()
            raise

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        code, headers = await self._send(path, "text/event-stream")
        if code != 200:
            raise RuntimeError(f"HTTP {code}")
        async for chunk in self._body(headers):
            yield chunk

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def httpx_client(port: int, token: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=60.0,
    )


# --------------------------------------------------------------------------- control calls
def spec(name: str, points: int, results: Path) -> dict[str, Any]:
    return {
        "name": name,
        "parameters": {"x": {"range": [0, points]}},
        "steps": {"noop": {"run": "bench.workloads:noop", "foreach": True}},
        "results": str(results),
    }


async def wait_ready(
    client: httpx.AsyncClient, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exited(proc):
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server was not ready after {timeout:.0f} s")


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await client.post(BASE, json=body)
    if answer.status_code != 201:
        raise RuntimeError(f"submit answered {answer.status_code}: {answer.text}")
    return str(answer.json()["id"])


async def status(client: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    answer = await client.get(f"{BASE}/{cid}")
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


async def wait_state(
    client: httpx.AsyncClient, cid: str, states: set[str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = await status(client, cid)
        if current["state"] in states:
            return current
        if time.monotonic() > deadline:
            raise RuntimeError(f"campaign {cid} still {current['state']} after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def route_histogram(client: httpx.AsyncClient, route: str) -> dict[str, float]:
    """Cumulative bucket counts of the server's own latency histogram for GET `route`."""
    text = (await client.get("/metrics")).text
    labels = f'method="GET",route="{route}"'
    buckets: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("orchestrator_http_request_seconds_bucket{") and labels in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


async def event_count(client: httpx.AsyncClient, cid: str) -> int:
    after = 0
    while True:
        page = (await client.get(f"{BASE}/{cid}/events", params={"after": after})).json()
        if not page["items"]:
            return after
        after = page["next_after"]


# --------------------------------------------------------------------------- latency
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.1f} ms"  # nan -> "-"


@dataclass
class Latency:
    seconds: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    window: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process (the load generator) during the run
    wall: float = 0.0
    server: dict[str, float] = field(default_factory=dict)  # histogram bucket -> requests
    note: str = ""

    @property
    def rate(self) -> float:
        return len(self.seconds) / self.window if self.window else float("nan")

    def server_share(self, bucket: str = "0.1") -> float:
        """Share of the requests the app handled within `bucket` seconds."""
        total = self.server.get("+Inf", 0.0)
        return self.server.get(bucket, 0.0) / total if total else float("nan")


Getter = Callable[[str], Awaitable[int]]


async def measure_latency(
    control: httpx.AsyncClient,
    getters: list[Getter],
    path: str,
    duration: float,
    warmup: float,
    running: str | None = None,
    route: str = CAMPAIGN_ROUTE,
) -> Latency:
    """One closed-loop client per getter GETs `path` for warmup + duration seconds; only
    requests sent after the warm-up count. With `running` (a campaign id), the window ends
    early when that campaign ends."""
    result = Latency()
    histogram = await route_histogram(control, route)
    cpu, start = time.process_time(), time.perf_counter()
    measure_from = start + warmup
    end = [measure_from + duration]

    async def one(get: Getter) -> None:
        while (sent := time.perf_counter()) < end[0]:
            try:
                code = str(await get(path))
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
                code = type(exc).__name__
            done = time.perf_counter()
            if sent >= measure_from and done <= end[0]:
                result.seconds.append(done - sent)
                if code != "200":
                    result.errors[code] = result.errors.get(code, 0) + 1

    async def watch(cid: str) -> None:
        while time.perf_counter() < end[0]:
            await asyncio.sleep(0.5)
            with contextlib.suppress(httpx.HTTPError):
                current = await status(control, cid)
                if current["state"] in TERMINAL and time.perf_counter() < end[0]:
                    end[0] = time.perf_counter()
                    result.note = f"the campaign ended ({current['state']}) during the window"

    await asyncio.gather(*(one(g) for g in getters), *([watch(running)] if running else []))
    result.window = max(0.0, end[0] - measure_from)
    result.cpu, result.wall = time.process_time() - cpu, time.perf_counter() - start
    after = await route_histogram(control, route)
    result.server = {k: v - histogram.get(k, 0.0) for k, v in after.items()}
    return result


# --------------------------------------------------------------------------- events
@dataclass
class Subscriber:
    events: int = 0
    seconds: float = 0.0
    lags: list[float] = field(default_factory=list)
    in_order: bool = True
    last: dict[str, Any] | None = None
    error: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("nan")

    def take(self, data: str) -> None:
        now = time.time()
        event = json.loads(data)
        self.events += 1
        self.in_order &= event["seq"] == self.events
        self.lags.append(now - event["time"])
        self.last = event


async def subscribe_raw(port: int, token: str, cid: str) -> Subscriber:
    sub, start = Subscriber(), time.perf_counter()
    connection, pending = RawConnection(port, token), b""
    try:
        async for chunk in connection.stream(f"{BASE}/{cid}/events"):
            pending += chunk
            *blocks, pending = pending.split(b"\n\n")
            for block in blocks:
                for line in block.split(b"\n"):
                    if line.startswith(b"data: "):
                        sub.take(line[6:].decode())
    except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
        sub.error = f"{type(exc).__name__}: {exc}"
    finally:
        await connection.close()
    sub.seconds = time.perf_counter() - start
    return sub


async def subscribe_httpx(client: httpx.AsyncClient, cid: str) -> Subscriber:
    sub, start = Subscriber(), time.perf_counter()
    headers = {"Accept": "text/event-stream"}
    try:
        async with client.stream(
            "GET", f"{BASE}/{cid}/events", headers=headers, timeout=None
        ) as stream:
            if stream.status_code != 200:
                sub.error = f"HTTP {stream.status_code}"
            else:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        sub.take(line[6:])
    except httpx.HTTPError as exc:
        sub.error = type(exc).__name__
    sub.seconds = time.perf_counter() - start
    return sub


def complete(subs: list[Subscriber], expected: int) -> bool:
    return all(
        not s.error
        and s.in_order
        and s.events == expected
        and s.last is not None
        and s.last["kind"] == "campaign"
        and s.last["state"] in TERMINAL
        for s in subs
    )


# --------------------------------------------------------------------------- the run
async def run(
    args: argparse.Namespace, port: int, token: str, proc: subprocess.Popen[bytes], work: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    results, n = work / "results", args.points
    async with httpx_client(port, token, 4) as control:

        async def measure(clients: int, path: str, duration: float, warmup: float, **kw: Any):
            if args.client == "httpx":
                async with httpx_client(port, token, clients) as load:

                    async def get(p: str) -> int:
                        return (await load.get(p)).status_code

                    return await measure_latency(
                        control, [get] * clients, path, duration, warmup, **kw
                    )
            connections = [RawConnection(port, token) for _ in range(clients)]
            try:
                getters = [c.get for c in connections]
                return await measure_latency(control, getters, path, duration, warmup, **kw)
            finally:
                for c in connections:
                    await c.close()

        async def subscribers(cid: str) -> tuple[list[Subscriber], float, float]:
            cpu, start = time.process_time(), time.perf_counter()
            if args.client == "httpx":
                async with httpx_client(port, token, args.subscribers) as load:
                    subs = await asyncio.gather(
                        *(subscribe_httpx(load, cid) for _ in range(args.subscribers))
                    )
            else:
                subs = await asyncio.gather(
                    *(subscribe_raw(port, token, cid) for _ in range(args.subscribers))
                )
            wall = time.perf_counter() - start
            return list(subs), wall, (time.process_time() - cpu) / wall

        await wait_ready(control, proc, 90)
        print(f"warm-up: a {n}-task campaign (starts the cluster) ...", flush=True)
        warm = await submit(control, spec("warm", n, results))
        out["warm"] = done = await wait_state(control, warm, TERMINAL, args.campaign_timeout)
        print(f"    {done['state']} in {done['finished_at'] - done['started_at']:.1f} s")

        print(f"(a) idle: {args.clients} clients, {args.duration:.0f} s ...", flush=True)
        out["idle"] = await measure(args.clients, f"{BASE}/{warm}", args.duration, args.warmup)
        out["idle_single"] = await measure(1, f"{BASE}/{warm}", SINGLE_SECONDS, 1.0)
        out["healthz"] = await measure(
            args.clients, "/healthz", args.duration / 2, args.warmup, route="/healthz"
        )

        print(f"(b) busy: a {n}-task campaign running, {args.clients} clients ...", flush=True)
        busy = await submit(control, spec("busy", n, results))
        await wait_state(control, busy, {"running", *TERMINAL}, args.campaign_timeout)
        before = (await status(control, busy))["counts"].get("succeeded", 0)
        out["busy"] = await measure(
            args.clients, f"{BASE}/{busy}", args.duration, args.warmup, running=busy
        )
        after = (await status(control, busy))["counts"].get("succeeded", 0)
        out["busy_tasks"] = after - before
        out["busy_single"] = await measure(1, f"{BASE}/{busy}", SINGLE_SECONDS, 0.5, running=busy)
        out["busy_campaign"] = done = await wait_state(
            control, busy, TERMINAL, args.campaign_timeout
        )
        print(f"    {done['state']} in {done['finished_at'] - done['started_at']:.1f} s")

        print(f"(c) events: {args.subscribers} subscribers on a {n}-task campaign ...", flush=True)
        watched = await submit(control, spec("watched", n, results))
        out["live"] = await subscribers(watched)
        out["watched_campaign"] = await status(control, watched)
        out["watched_events"] = await event_count(control, watched)
        print(f"    replay of the finished campaign to {args.subscribers} subscribers ...")
        out["replay"] = await subscribers(watched)
    return out


# --------------------------------------------------------------------------- report
def report(out: dict[str, Any], args: argparse.Namespace) -> bool:
    idle, busy = out["idle"], out["busy"]
    single = {id(idle): out["idle_single"], id(busy): out["busy_single"]}
    ok_idle = pct(idle.seconds, 99) < TARGET_P99 and not idle.errors
    ok_busy = pct(busy.seconds, 99) < TARGET_P99 and not busy.errors
    print()
    print(
        f"GET {BASE}/{{id}}: {args.clients} concurrent clients, closed loop, "
        f"{args.duration:.0f} s after {args.warmup:.0f} s warm-up (load sent with {args.client})"
    )

    def row(name: str, f: Callable[[Latency], str], tgt: str = "", res: str = "") -> list[str]:
        return [name, f(idle), f(busy), tgt, res]

    def alone(r: Latency) -> str:
        s = single[id(r)]
        return f"{ms(pct(s.seconds, 50))} / {ms(pct(s.seconds, 99))}, {s.rate:,.0f}/s"

    rows = [
        row("p50", lambda r: ms(pct(r.seconds, 50))),
        row("p90", lambda r: ms(pct(r.seconds, 90))),
        row(
            "p99",
            lambda r: ms(pct(r.seconds, 99)),
            f"< {TARGET_P99 * 1000:.0f} ms",
            f"idle {verdict(ok_idle)} / busy {verdict(ok_busy)}",
        ),
        row("max", lambda r: ms(max(r.seconds, default=float("nan")))),
        row("requests (rate)", lambda r: f"{len(r.seconds):,} ({r.rate:,.0f}/s)"),
        row("errors", lambda r: ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0"),
        row("app-side time <= 100 ms (/metrics)", lambda r: f"{r.server_share():.1%}"),
        row("load generator CPU (of a core)", lambda r: f"{r.cpu / r.wall:.0%}"),
        row("1 client alone: p50 / p99, rate", alone),
    ]
    print(table(["", "(a) idle", "(b) busy", "target", "result"], rows))
    warm, bc, hz = out["warm"], out["busy_campaign"], out["healthz"]
    print(
        f"    idle: a finished {args.points}-task campaign; busy: a {args.points}-task campaign "
        f"running ({out['busy_tasks']:,} of its tasks finished during the window). Its run: "
        f"{bc['finished_at'] - bc['started_at']:.1f} s under this load, "
        f"{warm['finished_at'] - warm['started_at']:.1f} s without (the warm-up)."
    )
    print(
        f"    floor: GET /healthz (no token, no store), same {args.clients} clients: "
        f"p50 {ms(pct(hz.seconds, 50))}, p99 {ms(pct(hz.seconds, 99))}, {hz.rate:,.0f}/s."
    )
    for r, name in ((busy, "busy"), (out["busy_single"], "busy, 1 client")):
        if r.note:
            print(f"    note ({name}): {r.note}")
    print()

    (live, live_wall, live_cpu), (replay, replay_wall, replay_cpu) = out["live"], out["replay"]
    expected, wc = out["watched_events"], out["watched_campaign"]
    ok_events = complete(live, expected) and complete(replay, expected)

    def sse_row(name: str, subs: list[Subscriber], wall: float, cpu: float, lag: bool):
        rates = [s.rate for s in subs]
        lags = [x for s in subs for x in s.lags] if lag else []
        return [
            name,
            f"{min(rates):,.0f} / {statistics.median(rates):,.0f} / {max(rates):,.0f}",
            f"{sum(s.events for s in subs) / wall:,.0f}",
            f"{ms(pct(lags, 50))} / {ms(pct(lags, 99))}" if lag else "-",
            f"{cpu:.0%}",
            verdict(complete(subs, expected)),
        ]

    print(
        f"Events: {args.subscribers} subscribers (Accept: text/event-stream), "
        f"{expected:,} events in the campaign; rates reported, no target"
    )
    print(
        table(
            [
                "",
                "events/s per subscriber (min/med/max)",
                "events/s total",
                "lag p50 / p99",
                "load gen. CPU",
                "every event, in order",
            ],
            [
                sse_row("live (campaign running)", live, live_wall, live_cpu, True),
                sse_row("replay (campaign finished)", replay, replay_wall, replay_cpu, False),
            ],
        )
    )
    print(
        f"    live: subscribed at submit, until the stream ends with the campaign ({wc['state']}"
        f" after {wc['finished_at'] - wc['started_at']:.1f} s of run; the stream polls the store"
        " every 0.25 s), so it is paced by the campaign."
    )
    print("    events/s total: events delivered to all subscribers / wall time of the phase.")
    for name, subs in (("live", live), ("replay", replay)):
        for i, s in enumerate(subs):
            if s.error:
                print(f"    {name} subscriber {i}: {s.error}")
    print()
    return ok_idle and ok_busy and ok_events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--campaign-timeout", type=float, default=120.0)
    parser.add_argument(
        "--front-door",
        action="store_true",
        help="instead: GET status on a front door whose campaigns run in another process, "
        "side by side with the all-in-one serve running them (bench/_front_door.py)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --front-door: alternated")
    parser.add_argument(
        "--setup",
        action="append",
        choices=["all-in-one", "front-door", "core-each"],
        help="with --front-door: only these setups (repeatable; default: all three)",
    )
    args = parser.parse_args()
    if args.front_door:
        from bench._front_door import compare

        return compare(args)

    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        work = Path(folder)
        env = orchestrator_env(work / "data")
        code, _, token, err = run_child(
            [ORCHESTRATOR, "token", "--project", PROJECT], env=env, timeout=60
        )
        if code != 0:
            print(f"orchestrator token failed: {err}", file=sys.stderr)
            return 1
        port, log = free_port(), work / "server.log"
        print(f"orchestrator serve on 127.0.0.1:{port} ...", flush=True)
        proc = start_server(env, port, log)
        try:
            out = asyncio.run(run(args, port, token.strip(), proc, work))
        except Exception as exc:
            print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            print(log_tail(log), file=sys.stderr)
            return 1
        finally:
            stop_server(proc)
        ok = report(out, args)
    print("all targets MET" if ok else "some targets NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
