"""The orchestrator beside its peers, end to end, on the same no-op points and the same 2 workers.

For each size N, as processes of their own, alternated and repeated (medians):
  (i)   `orchestrator run spec.yaml --json` (a `foreach` step over `range(N)`; `--chunk`
        puts `chunk: <value>` on the step), with its campaign time (`finished_at - started_at`);
  (ii)  bare Dask: a script that starts `LocalCluster(n_workers=2, threads_per_worker=1)`,
        `client.gather(client.map(noop, range(N), pure=False))`, closes; and its map+gather time;
  (iii) Parsl: a script that loads a `HighThroughputExecutor` (2 workers of 1 core, the local
        provider, one block, loopback address), submits N `python_app` calls of the same
        no-op, waits for every result, cleans up; and its submit+result time.
Targets: at 5000 points (no chunks), bare Dask / orchestrator wall time >= 0.80; at 100000
points (with `--chunk`), the orchestrator >= 3x as fast as bare Dask and faster than Parsl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    CLUSTER,
    ORCHESTRATOR,
    PYTHON,
    ensure_repo_on_path,
    fmt_rate,
    fmt_s,
    median,
    orchestrator_env,
    run_child,
    table,
    verdict,
)

SCRIPT = str(Path(__file__).resolve())
SMALL, LARGE = 5000, 100_000
TARGET_SMALL = 0.80  # bare Dask wall / orchestrator wall, at SMALL points
TARGET_LARGE = 3.0  # bare Dask wall / orchestrator wall, at LARGE points (with chunks)
PEERS = ("orchestrator", "dask", "parsl")


# ------------------------------------------------------------------------ the children
def dask_child(n: int) -> None:
    """Bare Dask, as a user's script: start the cluster, map, gather, close."""
    from distributed import Client, LocalCluster

    ensure_repo_on_path()
    from bench.workloads import noop

    cluster = LocalCluster(host="127.0.0.1", **CLUSTER)
    client = Client(cluster)
    start = time.perf_counter()
    results = client.gather(client.map(noop, range(n), pure=False))
    inner = time.perf_counter() - start
    client.close()
    cluster.close()
    assert len(results) == n
    print(json.dumps({"inner": inner}))


def parsl_child(n: int, run_dir: str) -> None:
    """Parsl's HighThroughputExecutor on this machine: 2 single-core workers, loopback."""
    import parsl
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    ensure_repo_on_path()
    from bench.workloads import noop

    config = Config(
        executors=[
            HighThroughputExecutor(
                label="htex",
                address="127.0.0.1",
                loopback_address="127.0.0.1",
                max_workers_per_node=CLUSTER["n_workers"],
                cores_per_worker=1,
                provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
            )
        ],
        run_dir=run_dir,
    )
    dfk = parsl.load(config)
    app = parsl.python_app(noop, executors=["htex"])
    start = time.perf_counter()
    futures = [app(i) for i in range(n)]
    results = [f.result() for f in futures]
    inner = time.perf_counter() - start
    dfk.cleanup()
    assert len(results) == n
    print(json.dumps({"inner": inner}))


# ------------------------------------------------------------------------ the spec
def spec_text(name: str, points: int, results: Path, chunk: str | None = None) -> str:
    """The campaign: one `foreach` no-op step over `range(points)` (+ `chunk` if given)."""
    import yaml

    step: dict[str, Any] = {"run": "bench.workloads:noop", "foreach": True}
    if chunk is not None:
        step["chunk"] = int(chunk) if chunk.isdigit() else chunk
    document = {
        "name": name,
        "parameters": {"x": {"range": [0, points]}},
        "steps": {"noop": step},
        "results": str(results),
    }
    return yaml.safe_dump(document, sort_keys=False)


def chunk_value(text: str) -> str:
    if text == "auto" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError(f"--chunk must be 'auto' or a positive integer, not {text!r}")


# ------------------------------------------------------------------------ measuring
class Failed(RuntimeError):
    """One peer's run did not finish as it should (its message says why)."""


def run_orchestrator(
    spec: Path, env: dict[str, str], n: int, timeout: float
) -> tuple[float, float]:
    rc, wall, out, err = run_child(
        [ORCHESTRATOR, "run", str(spec), "--json"], env=env, timeout=timeout
    )
    if rc is None:
        raise Failed(f"orchestrator run: over the {timeout:.0f} s timeout")
    if rc != 0:
        raise Failed(f"orchestrator run exited {rc}: {err.strip()[-600:]}")
    status = json.loads(out.strip().splitlines()[-1])
    if status["state"] != "succeeded" or status["counts"]["succeeded"] != n:
        raise Failed(f"orchestrator run did not succeed: {status['state']} {status['counts']}")
    return wall, status["finished_at"] - status["started_at"]


def run_peer(
    argv: list[str], env: dict[str, str], what: str, timeout: float
) -> tuple[float, float]:
    rc, wall, out, err = run_child(argv, env=env, timeout=timeout)
    if rc is None:
        raise Failed(f"{what}: over the {timeout:.0f} s timeout")
    if rc != 0:
        raise Failed(f"{what} exited {rc}: {err.strip()[-600:]}")
    return wall, float(json.loads(out.strip().splitlines()[-1])["inner"])


def measure(
    workdir: Path, n: int, repeats: int, chunk: str | None, timeout: float, peers: list[str]
) -> dict[str, Any]:
    """Each peer `repeats` times, in a rotating order; walls and inner times, or a failure."""
    folder = workdir / f"n{n}"
    (folder / "data").mkdir(parents=True)
    env = orchestrator_env(folder / "data")
    # Parsl starts its interchange and worker pool by their script names, from PATH
    env["PATH"] = os.pathsep.join([str(Path(PYTHON).parent), env.get("PATH", "")])
    spec = folder / "spec.yaml"
    spec.write_text(spec_text(f"peers-{n}", n, folder / "data" / "results", chunk))
    if "orchestrator" in peers:  # the store exists before the timed runs, as a user's would
        rc, _, _, err = run_child([ORCHESTRATOR, "list", "--json"], env=env, timeout=120)
        if rc != 0:
            raise RuntimeError(f"orchestrator list failed: {err}")
    found: dict[str, Any] = {p: {"wall": [], "inner": [], "error": None} for p in peers}
    for r in range(repeats):
        order = peers[r % len(peers) :] + peers[: r % len(peers)]
        for peer in order:
            if found[peer]["error"]:
                continue
            try:
                if peer == "orchestrator":
                    wall, inner = run_orchestrator(spec, env, n, timeout)
                elif peer == "dask":
                    argv = [PYTHON, SCRIPT, "--dask-child", str(n)]
                    wall, inner = run_peer(argv, env, "bare Dask", timeout)
                else:
                    run_dir = folder / f"parsl-{r}"
                    argv = [PYTHON, SCRIPT, "--parsl-child", str(n), "--run-dir", str(run_dir)]
                    wall, inner = run_peer(argv, env, "Parsl", timeout)
            except Failed as exc:
                found[peer]["error"] = str(exc)
                print(f"    {peer:<12} n={n} run {r + 1}: FAILED: {exc}", flush=True)
                continue
            found[peer]["wall"].append(wall)
            found[peer]["inner"].append(inner)
            print(
                f"    {peer:<12} n={n} run {r + 1}: "
                f"{wall:7.2f} s end to end, {inner:7.2f} s inside",
                flush=True,
            )
    return found


# ------------------------------------------------------------------------ reporting
INNER = {
    "orchestrator": "campaign (finished - started)",
    "dask": "map + gather",
    "parsl": "submit + result",
}


def report(n: int, found: dict[str, Any], skipped: dict[str, str]) -> list[tuple[str, bool]]:
    walls = {
        p: median(found[p]["wall"]) if found.get(p) and found[p]["wall"] else None for p in PEERS
    }
    print(f"\n{n} no-op points, 2 workers x 1 thread; medians of {_counts(found)}")
    rows = []
    for peer in PEERS:
        if peer in skipped:
            rows.append([peer, "-", "-", "-", f"skipped: {skipped[peer]}"])
            continue
        got = found.get(peer) or {"wall": [], "inner": [], "error": "not run"}
        if not got["wall"]:
            rows.append([peer, "-", "-", "-", (got["error"] or "not run").splitlines()[0][:90]])
            continue
        inner = median(got["inner"])
        rows.append(
            [
                peer,
                fmt_s(walls[peer]),
                fmt_rate(n, walls[peer]),
                f"{fmt_s(inner)} ({INNER[peer]})",
                " ".join(f"{w:.1f}" for w in got["wall"]),
            ]
        )
    print(table(["", "end to end", "tasks/s", "inside", "runs (s)"], rows))
    orch, dask, parsl = walls["orchestrator"], walls["dask"], walls["parsl"]
    checks: list[tuple[str, bool]] = []
    if dask and orch:
        print(f"  bare Dask / orchestrator (wall): {dask / orch:.2f}")
    if parsl and orch:
        print(f"  Parsl / orchestrator (wall): {parsl / orch:.2f}")
    if n < LARGE:
        ok = bool(dask and orch and dask / orch >= TARGET_SMALL)
        checks.append((f"n={n}: bare Dask / orchestrator >= {TARGET_SMALL:.2f}", ok))
    if n >= LARGE:
        ok = bool(dask and orch and dask / orch >= TARGET_LARGE)
        checks.append((f"n={n}: orchestrator >= {TARGET_LARGE:.0f}x as fast as bare Dask", ok))
        ok = bool(parsl and orch and parsl / orch > 1.0)
        checks.append((f"n={n}: orchestrator faster than Parsl", ok))
    for what, ok in checks:
        print(f"  target {what}: {verdict(ok)}")
    return checks


def _counts(found: dict[str, Any]) -> str:
    return ", ".join(f"{p} {len(v['wall'])}" for p, v in found.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=f"{SMALL},{LARGE}", help="comma-separated N")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each peer per size")
    parser.add_argument(
        "--chunk", type=chunk_value, help=f"chunk: auto|N on the step at >= {LARGE} points"
    )
    parser.add_argument(
        "--large-without-chunk",
        action="store_true",
        help=f"run the orchestrator at >= {LARGE} points even without --chunk (slow)",
    )
    parser.add_argument("--timeout", type=float, help="cap per run, s (default 120 + 0.05 N)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000 points, once")
    parser.add_argument("--spec-only", type=int, help="print the spec for N points and exit")
    parser.add_argument("--dask-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--parsl-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dask_child is not None:
        dask_child(args.dask_child)
        return 0
    if args.parsl_child is not None:
        parsl_child(args.parsl_child, args.run_dir)
        return 0
    if args.spec_only is not None:
        print(spec_text("peers", args.spec_only, Path("results"), args.chunk), end="")
        return 0
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    repeats = 1 if args.quick else args.repeats
    started = time.perf_counter()
    checks: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        for n in sizes:
            skipped: dict[str, str] = {}
            if n >= LARGE and args.chunk is None and not args.large_without_chunk:
                skipped["orchestrator"] = "needs --chunk (or --large-without-chunk)"
            peers = [p for p in PEERS if p not in skipped]
            timeout = args.timeout or 120 + 0.05 * n
            print(f"{n} points: {', '.join(peers)}; {repeats} run(s) each ...", flush=True)
            chunk = args.chunk if n >= LARGE else None  # the SMALL target is without chunks
            found = measure(Path(tmp), n, repeats, chunk, timeout, peers)
            checks += report(n, found, skipped)
    ok = all(met for _, met in checks)
    print(f"\nall targets: {verdict(ok)}  (total {time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
