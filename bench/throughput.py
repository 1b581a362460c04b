"""Throughput of trivial tasks: the orchestrator vs bare Dask `client.map` (and vs Luigi).

    .venv/bin/python bench/throughput.py            # ~5 min on 2 cores
    .venv/bin/python bench/throughput.py --full     # also Luigi/orchestrator at 8000 tasks

(a) in-process: Service.submit + Service.run on a started LocalCompute (2 workers x 1
    thread, processes, no dashboard; SQLite store in a temp dir) vs
    client.gather(client.map(noop, range(N), pure=False)) on the same client; alternated,
    repeated, medians. Target: bare/orchestrator wall-time ratio >= 0.80.
(b) end to end: `orchestrator run spec.yaml --json` as a subprocess (cluster start-up
    included) vs a bare script that starts the same LocalCluster and maps N no-ops.
(c) Luigi (local scheduler, workers=2, a WrapperTask requiring N file-target tasks) vs the
    orchestrator (in-process) at N = 1000, 2000, 4000 (and 8000 with --full).
"""

from __future__ import annotations

import argparse
import json
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
    REPO,
    ensure_repo_on_path,
    fmt_rate,
    fmt_s,
    median,
    orchestrator_env,
    run_child,
    spec_yaml,
    table,
    verdict,
)

TARGET_RATIO = 0.80
LUIGI_SIZES = [1000, 2000, 4000, 8000]
SCRIPT = str(Path(__file__).resolve())


# --------------------------------------------------------------------------- (a)
class InProcess:
    """One LocalCompute and one Service (SQLite in a temp dir) for all in-process runs."""

    def __init__(self, workdir: Path):
        ensure_repo_on_path()
        from cluster import LocalCompute, LocalSettings
        from orchestrator.service import Service
        from orchestrator.settings import EngineSettings, Settings

        self.workdir = workdir
        settings = Settings(
            data_dir=workdir / "data",
            results_url=str(workdir / "results"),
            engine=EngineSettings(),  # the defaults, whatever the environment says
        )
        self.service = Service(settings)
        self.compute = LocalCompute(LocalSettings(**CLUSTER))
        self.client = self.compute.client

    def close(self) -> None:
        self.compute.close()
        self.service.close()

    def bare(self, n: int) -> float:
        from bench.workloads import noop

        start = time.perf_counter()
        results = self.client.gather(self.client.map(noop, range(n), pure=False))
        elapsed = time.perf_counter() - start
        assert len(results) == n
        return elapsed

    def orchestrator(self, n: int) -> float:
        from orchestrator.spec import parse_document

        spec = parse_document(
            {
                "name": f"bench-noop-{n}",
                "parameters": {"x": {"range": [0, n]}},
                "steps": {"noop": {"run": "bench.workloads:noop", "foreach": True}},
                "results": str(self.workdir / "results"),
            }
        )
        start = time.perf_counter()
        campaign_id = self.service.submit(spec, import_paths=[str(REPO)])
        final = self.service.run(campaign_id, self.compute)
        elapsed = time.perf_counter() - start
        status = self.service.status(campaign_id)
        done = status["counts"]["succeeded"]
        if final != "succeeded" or done != n:
            raise RuntimeError(
                f"orchestrator campaign {campaign_id}: {final}, {done}/{n} succeeded"
            )
        return elapsed


def part_a(bench: InProcess, n: int, repeats: int) -> dict[str, Any]:
    print(f"(a) in-process, {n} no-op points, {repeats} alternating repeat(s) ...", flush=True)
    bench.bare(min(n, 1000))  # warm-up: worker imports, connections, code paths
    bench.orchestrator(min(n, 500))
    bare, orch = [], []
    for r in range(repeats):
        order = ("bare", "orch") if r % 2 == 0 else ("orch", "bare")
        for which in order:
            if which == "bare":
                bare.append(bench.bare(n))
            else:
                orch.append(bench.orchestrator(n))
            print(
                f"    {which:<5} run {r + 1}: {(bare if which == 'bare' else orch)[-1]:.2f} s",
                flush=True,
            )
    return {"bare": bare, "orch": orch}


# --------------------------------------------------------------------------- (b)
def bare_child(n: int) -> None:
    """The CLI's baseline: start the same LocalCluster, map n no-ops, shut down."""
    t0 = time.perf_counter()
    from distributed import Client, LocalCluster

    ensure_repo_on_path()
    from bench.workloads import noop

    t1 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=CLUSTER["n_workers"],
        threads_per_worker=CLUSTER["threads_per_worker"],
        processes=CLUSTER["processes"],
        dashboard_address=None,
        host="127.0.0.1",
    )
    client = Client(cluster)
    t2 = time.perf_counter()
    results = client.gather(client.map(noop, range(n), pure=False))
    t3 = time.perf_counter()
    client.close()
    cluster.close()
    assert len(results) == n
    print(json.dumps({"imports": t1 - t0, "startup": t2 - t1, "map": t3 - t2}))


def part_b(workdir: Path, n: int, repeats: int, timeout: float) -> dict[str, Any]:
    print(
        f"(b) end to end through the CLI, {n} points, {repeats} alternating repeat(s) ...",
        flush=True,
    )
    data = workdir / "cli-data"
    data.mkdir()
    spec = workdir / "spec.yaml"
    spec.write_text(spec_yaml("bench-noop", n, workdir / "cli-results"))
    env = orchestrator_env(data)
    # migrate the store first: the timed runs see an existing store, as a user's would
    rc, _, _, err = run_child([ORCHESTRATOR, "list", "--json"], env=env, timeout=120)
    if rc != 0:
        raise RuntimeError(f"orchestrator list failed: {err}")
    runs: dict[str, list[float]] = {"bare": [], "cli": [], "bare_map": [], "cli_engine": []}
    for r in range(repeats):
        order = ("bare", "cli") if r % 2 == 0 else ("cli", "bare")
        for which in order:
            if which == "bare":
                argv = [PYTHON, SCRIPT, "--bare-child", str(n)]
                rc, wall, out, err = run_child(argv, env=env, timeout=timeout)
                if rc != 0:
                    raise RuntimeError(f"bare script failed ({rc}): {err[-2000:]}")
                inner = json.loads(out.strip().splitlines()[-1])
                runs["bare"].append(wall)
                runs["bare_map"].append(inner["map"])
            else:
                argv = [ORCHESTRATOR, "run", str(spec), "--json"]
                rc, wall, out, err = run_child(argv, env=env, timeout=timeout)
                if rc != 0:
                    raise RuntimeError(f"orchestrator run failed ({rc}): {err[-2000:]}")
                status = json.loads(out)
                if status["state"] != "succeeded" or status["counts"]["succeeded"] != n:
                    raise RuntimeError(f"orchestrator run did not succeed: {status}")
                runs["cli"].append(wall)
                runs["cli_engine"].append(status["finished_at"] - status["started_at"])
            print(f"    {which:<5} run {r + 1}: {wall:.2f} s", flush=True)
    return runs


# --------------------------------------------------------------------------- (c)
def luigi_child(n: int, folder: str) -> None:
    import logging
    import os

    import luigi

    logging.getLogger("luigi-interface").setLevel(logging.WARNING)

    class Noop(luigi.Task):
        i = luigi.IntParameter()
        folder = luigi.Parameter()

        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(os.path.join(self.folder, f"{self.i}.done"))

        def run(self) -> None:
            open(self.output().path, "w").close()  # the completion marker, nothing else

    class All(luigi.WrapperTask):
        n = luigi.IntParameter()
        folder = luigi.Parameter()

        def requires(self) -> list[Noop]:
            return [Noop(i=i, folder=self.folder) for i in range(self.n)]

    start = time.perf_counter()
    ok = luigi.build(
        [All(n=n, folder=folder)], local_scheduler=True, workers=2, log_level="WARNING"
    )
    elapsed = time.perf_counter() - start
    done = sum(1 for name in os.listdir(folder) if name.endswith(".done"))
    print(json.dumps({"seconds": elapsed, "ok": bool(ok), "done": done}))


def part_c_luigi(workdir: Path, sizes: list[int], timeout: float) -> dict[int, float | str | None]:
    out: dict[int, float | str | None] = {}
    for n in sizes:
        if None in out.values():  # a smaller N already timed out: this one would too
            out[n] = "after-timeout"
            continue
        folder = workdir / f"luigi-{n}"
        folder.mkdir()
        print(f"(c) luigi, {n} tasks (timeout {timeout:.0f} s) ...", flush=True)
        argv = [PYTHON, SCRIPT, "--luigi-child", str(n), "--luigi-dir", str(folder)]
        rc, _, stdout, err = run_child(argv, timeout=timeout)
        if rc is None:
            out[n] = None
            print(f"    luigi {n}: > {timeout:.0f} s (stopped)", flush=True)
            continue
        if rc != 0:
            raise RuntimeError(f"luigi child failed ({rc}): {err[-2000:]}")
        result = json.loads(stdout.strip().splitlines()[-1])
        if not result["ok"] or result["done"] != n:
            raise RuntimeError(f"luigi did not complete all tasks: {result}")
        out[n] = result["seconds"]
        print(f"    luigi {n}: {result['seconds']:.2f} s", flush=True)
    return out


# --------------------------------------------------------------------------- report
def report(
    n: int,
    a: dict[str, Any] | None,
    b: dict[str, Any] | None,
    luigi: dict[int, float | str | None],
    orch_sizes: dict[int, float],
    luigi_timeout: float,
) -> bool:
    ok = True
    print()
    if a is not None:
        bare, orch = median(a["bare"]), median(a["orch"])
        ratio = bare / orch
        ok &= ratio >= TARGET_RATIO
        print(f"(a) in-process, {n} no-op points, medians of {len(a['orch'])} (persistence on)")
        print(
            table(
                ["", "bare client.map", "orchestrator", "ratio bare/orch", "target", "result"],
                [
                    [
                        "wall time",
                        fmt_s(bare),
                        fmt_s(orch),
                        f"{ratio:.2f}",
                        f">= {TARGET_RATIO:.2f}",
                        verdict(ratio >= TARGET_RATIO),
                    ],
                    ["tasks/s", fmt_rate(n, bare), fmt_rate(n, orch), "", "", ""],
                    [
                        "all runs",
                        " ".join(f"{x:.2f}" for x in a["bare"]),
                        " ".join(f"{x:.2f}" for x in a["orch"]),
                        "",
                        "",
                        "",
                    ],
                ],
            )
        )
        print()
    if b is not None:
        bare, cli = median(b["bare"]), median(b["cli"])
        bmap, ceng = median(b["bare_map"]), median(b["cli_engine"])
        ratio, inner = bare / cli, bmap / ceng
        print(
            f"(b) end to end, subprocess wall time incl. cluster start-up, {n} points, "
            f"medians of {len(b['cli'])} (informational; no target)"
        )
        print(
            table(
                ["", "bare script", "orchestrator run", "ratio bare/orch"],
                [
                    ["process wall time", fmt_s(bare), fmt_s(cli), f"{ratio:.2f}"],
                    ["tasks/s (wall)", fmt_rate(n, bare), fmt_rate(n, cli), ""],
                    ["map / campaign run only", fmt_s(bmap), fmt_s(ceng), f"{inner:.2f}"],
                    ["tasks/s (run only)", fmt_rate(n, bmap), fmt_rate(n, ceng), ""],
                ],
            )
        )
        print("    'campaign run only' = the campaign's finished_at - started_at from --json;")
        print("    'map only' = client.map+gather in the bare script, after cluster start-up.")
        print()
    if luigi or orch_sizes:
        rows = []
        for size in LUIGI_SIZES:
            lt = luigi.get(size, "skipped")
            ot = orch_sizes.get(size)
            if lt == "skipped":
                lcell, lrate, speed = "not run (--full)", "-", "-"
            elif lt == "after-timeout":
                lcell, lrate, speed = "not run (smaller N timed out)", "-", "-"
            elif lt is None:
                lcell, lrate = f"> {luigi_timeout:.0f} s", f"< {size / luigi_timeout:,.0f}/s"
                speed = f"> {luigi_timeout / ot:.1f}x" if ot else "-"
            else:
                lcell, lrate = fmt_s(lt), fmt_rate(size, lt)
                speed = f"{lt / ot:.1f}x" if ot else "-"
            rows.append([size, lcell, lrate, fmt_s(ot), fmt_rate(size, ot), speed])
        print("(c) Luigi (local scheduler, workers=2) vs orchestrator (in-process), one run each")
        print(
            table(
                [
                    "tasks",
                    "luigi",
                    "luigi tasks/s",
                    "orchestrator",
                    "orch tasks/s",
                    "luigi/orch time",
                ],
                rows,
            )
        )
        print()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="in-process repeats (a)")
    parser.add_argument("--cli-repeats", type=int, default=3, help="CLI repeats (b)")
    parser.add_argument("--full", action="store_true", help="also 8000 tasks in (c)")
    parser.add_argument(
        "--luigi-timeout",
        type=float,
        help="cap per Luigi run in seconds (default 150; 480 with --full)",
    )
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-luigi", action="store_true")
    parser.add_argument("--bare-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--luigi-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--luigi-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child is not None:
        bare_child(args.bare_child)
        return 0
    if args.luigi_child is not None:
        luigi_child(args.luigi_child, args.luigi_dir)
        return 0

    import logging

    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)

    sizes = LUIGI_SIZES if args.full else LUIGI_SIZES[:-1]
    if args.luigi_timeout is None:
        args.luigi_timeout = 480.0 if args.full else 150.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        workdir = Path(tmp)
        bench = InProcess(workdir)
        try:
            a = part_a(bench, args.points, args.repeats)
            orch_sizes: dict[int, float] = {}
            if not args.skip_luigi:
                for size in sizes:
                    orch_sizes[size] = bench.orchestrator(size)
                    print(f"(c) orchestrator, {size} tasks: {orch_sizes[size]:.2f} s", flush=True)
        finally:
            bench.close()  # the in-process cluster does not compete with the children below
        luigi: dict[int, float | str | None] = {}
        if not args.skip_luigi:
            luigi = part_c_luigi(workdir, sizes, args.luigi_timeout)
        b = None
        if not args.skip_cli:
            b = part_b(workdir, args.points, args.cli_repeats, timeout=240)
        ok = report(args.points, a, b, luigi, orch_sizes, args.luigi_timeout)
    print(
        f"target (a) bare/orchestrator >= {TARGET_RATIO:.2f}: {verdict(ok)}  "
        f"(total {time.perf_counter() - started:.0f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
