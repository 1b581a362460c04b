"""`api_latency.py --front-door`: GET status latency on a front door whose campaigns run in
another process, side by side with the all-in-one `serve` that runs them itself.

Both setups answer the same load the same way: 50 clients (`--clients`), closed loop, on
GET /v1/projects/lab/p1/campaigns/{id} of a 5000-task campaign (`--points`) while it runs,
after a warm-up campaign of the same size (which also starts the cluster); the clients only
ever talk to the process under test. What differs is where the campaign runs:

- all-in-one: `orchestrator serve`, which also runs the campaigns (the one-machine default);
- front door: the process the clients talk to runs no campaign; the project's instance, a
  second process on the same store, runs it;
- the same with a core each (CPU affinity: the front door on CPU 0, the instance with its
  scheduler and workers on CPU 1), as when they are different machines, as deployed.

The processes are the commands below, each in its own temporary data folder per setup (the
SQLite store both processes of the front-door setup share), each in its own process group.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import ORCHESTRATOR, REPO, orchestrator_env, run_child, table
from bench.api_latency import (
    BASE,
    PROJECT,
    TERMINAL,
    Latency,
    RawConnection,
    free_port,
    httpx_client,
    log_tail,
    measure_latency,
    ms,
    pct,
    spec,
    status,
    stop_server,
    wait_ready,
    wait_state,
)

PROJECTS = "ORCHESTRATOR_API__PROJECTS"


@dataclass(frozen=True)
class Command:
    """An `orchestrator` command line (after the program name) and what it adds to the
    environment; `--host 127.0.0.1 --port P` is appended."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        env = " ".join(f"{k}='{v}'" for k, v in self.env.items())
        return f"{env} orchestrator {' '.join(self.argv)}".strip()


ALL_IN_ONE = Command(("serve",))
# The front door: the public API over the shared store, running no campaign. `serve --role
# front-door` would first have the provisioner create the project's cluster and start its
# instance (a SLURM cluster, with the `local` provisioner); here a plain `serve` stands in,
# whose runner takes only a project that has no campaign, and without a registrar, as the
# front door has none (each instance registers its own project's provenance). It answers GET
# status the way the front door does (api/main.py's ServiceApp, the same status cache).
FRONT_DOOR = Command(
    ("serve",),
    {PROJECTS: json.dumps(["bench/no-campaigns"]), "ORCHESTRATOR_KG__ENABLED": "false"},
)
# The project's instance, which runs its campaigns (what cluster.instances starts today); with
# the roles, Command(("serve", "--role", "instance", "--project", PROJECT)).
INSTANCE = Command(("serve",), {PROJECTS: json.dumps([PROJECT])})


@dataclass(frozen=True)
class Setup:
    name: str
    key: str  # as `--setup` names it
    api: Command  # what the clients talk to
    runner: Command | None = None  # what runs the campaigns, if not `api`
    # CPUs of the process the clients talk to, and of the runner (its scheduler and workers
    # inherit them); None: any
    api_cpus: frozenset[int] | None = None
    runner_cpus: frozenset[int] | None = None


SETUPS = (
    Setup("all-in-one serve", "all-in-one", ALL_IN_ONE),
    Setup("front door + instance", "front-door", FRONT_DOOR, INSTANCE),
    # as deployed, where they are different machines: a core each (the clients on any)
    Setup(
        "same, a core each",
        "core-each",
        FRONT_DOOR,
        INSTANCE,
        api_cpus=frozenset({0}),
        runner_cpus=frozenset({1}),
    ),
)


@dataclass
class Outcome:
    latency: Latency = field(default_factory=Latency)
    tasks_in_window: int = 0
    warm_seconds: float = 0.0
    busy_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def start(
    command: Command,
    env: dict[str, str],
    port: int,
    log: Path,
    cpus: frozenset[int] | None = None,
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [ORCHESTRATOR, *command.argv, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env={**env, **command.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the server and its cluster
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None,
        )


async def load(port: int, token: str, args: argparse.Namespace, path: str, cid: str) -> Latency:
    async with httpx_client(port, token, 4) as control:
        connections = [RawConnection(port, token) for _ in range(args.clients)]
        try:
            getters = [c.get for c in connections]
            return await measure_latency(
                control, getters, path, args.duration, args.warmup, running=cid
            )
        finally:
            for connection in connections:
                await connection.close()


async def drive(
    args: argparse.Namespace,
    token: str,
    servers: list[tuple[subprocess.Popen[bytes], int]],
    results: Path,
) -> Outcome:
    out, (proc, port) = Outcome(), servers[0]
    for other, other_port in servers[1:]:  # the instance: its API is not used, but it is up
        async with httpx_client(other_port, token, 1) as client:
            await wait_ready(client, other, 90)
    async with httpx_client(port, token, 4) as control:
        await wait_ready(control, proc, 90)
        warm = await _submit(control, spec("warm", args.points, results))
        done = await wait_state(control, warm, TERMINAL, args.campaign_timeout)
        out.warm_seconds = done["finished_at"] - done["started_at"]
        busy = await _submit(control, spec("busy", args.points, results))
        await wait_state(control, busy, {"running", *TERMINAL}, args.campaign_timeout)
        before = (await status(control, busy))["counts"].get("succeeded", 0)
        out.latency = await load(port, token, args, f"{BASE}/{busy}", busy)
        out.tasks_in_window = (await status(control, busy))["counts"].get("succeeded", 0) - before
        done = await wait_state(control, busy, TERMINAL, args.campaign_timeout)
        out.busy_seconds = done["finished_at"] - done["started_at"]
        if done["state"] != "succeeded" or out.latency.note:
            out.notes.append(out.latency.note or f"the campaign ended {done['state']}")
    return out


async def _submit(control: Any, body: dict[str, Any]) -> str:
    answer = await control.post(BASE, json=body)
    if answer.status_code != 201:
        raise RuntimeError(f"submit answered {answer.status_code}: {answer.text}")
    return str(answer.json()["id"])


def measure(setup: Setup, args: argparse.Namespace, work: Path) -> Outcome:
    folder = work / setup.name.replace(" ", "-")
    env = orchestrator_env(folder / "data")
    code, _, token, err = run_child(
        [ORCHESTRATOR, "token", "--project", PROJECT], env=env, timeout=60
    )
    if code != 0:
        raise RuntimeError(f"orchestrator token failed: {err}")
    folder.mkdir(parents=True, exist_ok=True)
    logs = [folder / "api.log"]
    servers = [(start(setup.api, env, port := free_port(), logs[0], setup.api_cpus), port)]
    if setup.runner is not None:
        logs.append(folder / "runner.log")
        runner = start(setup.runner, env, port := free_port(), logs[1], setup.runner_cpus)
        servers.append((runner, port))
    try:
        return asyncio.run(drive(args, token.strip(), servers, folder / "data" / "results"))
    except Exception:
        for log in logs:
            print(f"--- {log.name}\n{log_tail(log)}")
        raise
    finally:
        for proc, _ in reversed(servers):
            stop_server(proc)


def compare(args: argparse.Namespace) -> int:
    started = datetime.datetime.now(datetime.UTC)
    setups = [s for s in SETUPS if not args.setup or s.key in args.setup]
    outcomes: dict[str, list[Outcome]] = {setup.name: [] for setup in setups}
    with tempfile.TemporaryDirectory(prefix="bench-front-door-") as folder:
        for round_ in range(args.rounds):
            for setup in setups if round_ % 2 == 0 else reversed(setups):
                print(f"round {round_ + 1}: {setup.name} ...", flush=True)
                outcomes[setup.name].append(measure(setup, args, Path(folder)))
    report(outcomes, args, started, setups)
    return 0


def report(
    outcomes: dict[str, list[Outcome]],
    args: argparse.Namespace,
    started: Any,
    setups: list[Setup],
) -> None:
    pooled = {name: [s for o in runs for s in o.latency.seconds] for name, runs in outcomes.items()}
    names = list(outcomes)

    def row(label: str, value: Any) -> list[str]:
        return [label, *(value(name) for name in names)]

    def total(name: str, attribute: str) -> float:
        return sum(getattr(o.latency, attribute) for o in outcomes[name])

    def seconds(name: str, attribute: str) -> str:
        return ", ".join(f"{getattr(o, attribute):.1f} s" for o in outcomes[name])

    def errors(name: str) -> str:
        found: dict[str, int] = {}
        for o in outcomes[name]:
            for code, n in o.latency.errors.items():
                found[code] = found.get(code, 0) + n
        return ", ".join(f"{k}: {v}" for k, v in found.items()) or "0"

    print()
    print(
        f"GET {BASE}/{{id}} while a {args.points}-task campaign runs: {args.clients} clients, "
        f"closed loop, {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"{args.rounds} round(s); {started:%Y-%m-%d %H:%M} UTC"
    )
    rows = [
        row("p50", lambda n: ms(pct(pooled[n], 50))),
        row("p90", lambda n: ms(pct(pooled[n], 90))),
        row("p99", lambda n: ms(pct(pooled[n], 99))),
        row("max", lambda n: ms(max(pooled[n], default=float("nan")))),
        row(
            "requests (rate)",
            lambda n: f"{len(pooled[n]):,} ({len(pooled[n]) / total(n, 'window'):,.0f}/s)",
        ),
        row("errors", errors),
        row(
            "tasks finished in the window",
            lambda n: ", ".join(f"{o.tasks_in_window:,}" for o in outcomes[n]),
        ),
        row("campaign run under load", lambda n: seconds(n, "busy_seconds")),
        row("warm-up campaign (no load)", lambda n: seconds(n, "warm_seconds")),
    ]
    print(table(["", *names], rows))
    for setup in setups:
        runner = f"; campaigns: {setup.runner.shown()}" if setup.runner else ""
        if setup.api_cpus is not None or setup.runner_cpus is not None:
            runner += f" (CPUs: clients' server {sorted(setup.api_cpus or [])}, "
            runner += f"campaigns {sorted(setup.runner_cpus or [])})"
        print(f"    {setup.name}: clients -> {setup.api.shown()}{runner}")
        for o in outcomes[setup.name]:
            for note in o.notes:
                print(f"    note ({setup.name}): {note}")
    print()
