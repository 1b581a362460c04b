"""A campaign of a million no-op points, end to end, as users run it: `orchestrator run`.

    .venv/bin/python bench/million.py                      # 1,000,000 points, SQLite
    .venv/bin/python bench/million.py --points 20000       # a quick check of the script
    .venv/bin/python bench/million.py --chunk auto         # points per Dask task (`chunk:`)
    .venv/bin/python bench/million.py --pg postgresql+psycopg://…/db

`orchestrator run SPEC --json` runs `bench.workloads:noop` foreach over `--points` points
(a child process in its own process group; its LocalCluster 2 workers x 1 thread). Once
the campaign is `running`, `orchestrator serve` on the same store answers GET status and
GET tasks (first page), each polled every `--poll` seconds with a token from `orchestrator
token`; its runner leaves the campaign to the live runner that holds it.

Printed: wall time of the run, time to the first succeeded task (seen by the status poll),
peak RSS of the run's process tree (the CLI, its scheduler, workers and registrar; psutil,
sampled every 0.5 s) and of the serve's, the store's size on disk (SQLite files, or the
PostgreSQL database), p50/p99/max of the polled status and tasks requests, whether the
manifest has a line for every point, and how much provenance the registrars (the run's, and
the serve's on the same store) sent by the end of the run: the rest waits in the outbox.
With `--catch-up`, a fresh `orchestrator serve` then sends that rest, and the time it took is
printed too.
Exit 0 only when the run succeeded and the manifest is complete; 2 when the spec was refused
(e.g. `chunk:` on a version without it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil

from bench._common import ORCHESTRATOR, REPO, kill_group, orchestrator_env
from bench.api_latency import free_port, start_server, stop_server

PROJECT = "local/default"  # where `orchestrator run` puts its campaigns


def spec_text(points: int, results: Path, chunk: str | None) -> str:
    step = "{run: 'bench.workloads:noop', foreach: true" + (f", chunk: {chunk}" if chunk else "")
    return (
        f"name: million\n"
        f"parameters: {{x: {{range: [0, {points}]}}}}\n"
        f"steps: {{noop: {step}}}}}\n"
        f"results: {results}\n"
    )


class TreeRss:
    """Peak RSS (sum over a process and its descendants), sampled on a thread."""

    def __init__(self, pid: int, every: float = 0.5):
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.pid)
                total = 0
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
                self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _campaign(url: str) -> tuple[str, str] | None:
    """(id, state) of the newest campaign in the store, read directly."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT id, state FROM campaigns ORDER BY created_at DESC LIMIT 1")
            ).first()
    except DBAPIError:  # not created yet
        return None
    finally:
        engine.dispose()
    return None if row is None else (str(row[0]), str(row[1]))


def _store_size(url: str, data_dir: Path) -> int:
    if url.startswith("sqlite"):
        return sum(p.stat().st_size for p in data_dir.glob("orchestrator.db*") if p.is_file())
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return int(size)


def _outbox(url: str) -> tuple[int, int]:
    """(registrations written, left unsent in the outbox) for the knowledge graph."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        total, left = conn.execute(
            text("SELECT count(*), count(*) FILTER (WHERE done_at IS NULL) FROM outbox")
        ).one()
    engine.dispose()
    return int(total), int(left)


def _manifest(results: Path, points: int) -> tuple[int, int]:
    """(lines, distinct points listed), reading the manifest line by line."""
    seen = bytearray(points)
    lines = 0
    path = results / "manifest.jsonl"
    if path.exists():
        with path.open() as handle:
            for line in handle:
                lines += 1
                point = json.loads(line).get("point")
                if isinstance(point, int) and 0 <= point < points:
                    seen[point] = 1
    return lines, sum(seen)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--chunk", help="auto or N: adds `chunk:` to the step")
    parser.add_argument("--pg", help="a PostgreSQL URL for the store (default: SQLite)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument(
        "--catch-up",
        action="store_true",
        help="after the run, time `orchestrator serve` sending the provenance left in the outbox",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="million-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> int:
    data_dir = work / "data"
    results = data_dir / "results"  # under the results location the store allows
    data_dir.mkdir()
    url = args.pg or f"sqlite:///{data_dir / 'orchestrator.db'}"
    env = orchestrator_env(data_dir, ORCHESTRATOR_DB_URL=url)
    spec = work / "million.yaml"
    spec.write_text(spec_text(args.points, results, args.chunk))
    log = work / "run.log"
    started = time.monotonic()
    with log.open("wb") as out:
        child = subprocess.Popen(
            [ORCHESTRATOR, "run", str(spec), "--json"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=out,
            start_new_session=True,
        )
    run_rss = TreeRss(child.pid)
    server: subprocess.Popen[bytes] | None = None
    serve_rss: TreeRss | None = None
    status_ms: list[float] = []
    tasks_ms: list[float] = []
    first_result: float | None = None
    try:
        campaign = None
        while child.poll() is None and (campaign is None or campaign[1] != "running"):
            time.sleep(0.5)
            campaign = _campaign(url)
        if campaign is not None and child.poll() is None:
            port = free_port()
            server = start_server(env, port, work / "serve.log")
            serve_rss = TreeRss(server.pid)
            token = subprocess.run(
                [ORCHESTRATOR, "token", "--project", PROJECT],
                env=env,
                cwd=REPO,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            base = f"http://127.0.0.1:{port}/v1/projects/{PROJECT}/campaigns/{campaign[0]}"
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(headers=headers, timeout=60) as client:
                while child.poll() is None and time.monotonic() - started < args.timeout:
                    try:
                        t0 = time.perf_counter()
                        answer = client.get(base)
                        t1 = time.perf_counter()
                        client.get(f"{base}/tasks", params={"limit": 500})
                        t2 = time.perf_counter()
                    except httpx.HTTPError:  # still starting
                        time.sleep(args.poll)
                        continue
                    if answer.status_code == 200:
                        status_ms.append((t1 - t0) * 1000)
                        tasks_ms.append((t2 - t1) * 1000)
                        if first_result is None and answer.json()["counts"]["succeeded"]:
                            first_result = time.monotonic() - started
                    time.sleep(args.poll)
        remaining = max(1.0, args.timeout - (time.monotonic() - started))
        stdout, _ = child.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        kill_group(child)
        print(f"the run did not end within {args.timeout:.0f} s", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            stop_server(server)
        if child.poll() is None:
            kill_group(child)
    wall = time.monotonic() - started
    run_peak = run_rss.stop()
    serve_peak = serve_rss.stop() if serve_rss is not None else 0
    if child.returncode == 2:
        print(log.read_text()[-2000:], file=sys.stderr)
        print("the spec was refused (exit 2, above); `chunk:` needs a version that has it")
        return 2
    if child.returncode != 0:  # say why, before the folder (and the log) is removed
        print(f"--- the run's log (last lines)\n{log.read_text()[-4000:]}", file=sys.stderr)
    final = json.loads(stdout.decode().strip().splitlines()[-1]) if stdout.strip() else {}
    # the campaign's own folder under the results location (its status names it)
    folder = Path(str(final.get("results") or results).removeprefix("file://"))
    lines, listed = _manifest(folder, args.points)
    size = _store_size(url, data_dir)
    registrations, unsent = _outbox(url)
    figures = [
        ("points", f"{args.points}" + (f" (chunk: {args.chunk})" if args.chunk else "")),
        ("store", "PostgreSQL" if args.pg else "SQLite"),
        ("run exit code / state", f"{child.returncode} / {final.get('state')}"),
        ("wall time", f"{wall:.1f} s ({args.points / wall:.0f} points/s)"),
        ("time to first result", f"{first_result:.1f} s" if first_result else "not seen"),
        ("peak RSS, run's process tree", f"{run_peak / 2**20:.0f} MiB"),
        ("peak RSS, serve's process tree", f"{serve_peak / 2**20:.0f} MiB"),
        ("store size on disk", f"{size / 2**20:.0f} MiB"),
        ("GET status p50 / p99 / max", _latency(status_ms)),
        ("GET tasks (500) p50 / p99 / max", _latency(tasks_ms)),
        ("manifest lines / points listed", f"{lines} / {listed} of {args.points}"),
        (
            "provenance sent by the end",
            f"{registrations - unsent} of {registrations} registrations"
            f" ({unsent} left in the outbox for the next start)",
        ),
    ]
    if args.catch_up and unsent:
        figures.append(
            ("provenance catch-up after the run", _catch_up(url, env, work, unsent, args))
        )
    for name, value in figures:
        print(f"{name:<34} {value}")
    complete = listed == args.points
    if not complete:
        print("the manifest is INCOMPLETE", file=sys.stderr)
    return 0 if complete and child.returncode == 0 else 1


def _catch_up(
    url: str, env: dict[str, str], work: Path, unsent: int, args: argparse.Namespace
) -> str:
    """How long a fresh `orchestrator serve` on the store takes to send what the run left in
    the outbox (its registrar sends it in the background, oldest first)."""
    started = time.monotonic()
    server = start_server(env, free_port(), work / "catch-up.log")
    rss = TreeRss(server.pid)
    left = unsent
    try:
        while left and time.monotonic() - started < args.timeout:
            time.sleep(5)
            left = _outbox(url)[1]
    finally:
        stop_server(server)
    seconds = time.monotonic() - started
    peak = rss.stop() / 2**20
    sent = unsent - left
    done = "all sent" if not left else f"{left} still left"
    return (
        f"{sent} in {seconds:.0f} s ({sent / seconds:.0f}/s; {done}; serve peak RSS {peak:.0f} MiB)"
    )


def _latency(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"{statistics.median(values):.1f} / {_pct(values, 0.99):.1f} / {max(values):.1f} ms"
        f" ({len(values)} requests)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
