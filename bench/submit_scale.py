"""`orchestrator submit` of a 1,000,000-point sweep vs a 10-point one (the sweep stays lazy).

    .venv/bin/python bench/submit_scale.py          # ~1 min

Each measurement runs the real CLI as a subprocess of a fresh wrapper process, which reports
the wall time and peak RSS of that one child (getrusage(RUSAGE_CHILDREN).ru_maxrss).
The store (SQLite) lives in a temp dir (ORCHESTRATOR_DATA_DIR). Targets:
  - submit wall time(1M) <= 1.5 x submit wall time(10)
  - submit peak RSS(1M) <= 400 MB
  - no task rows in the store after submit (sqlite3 count on `tasks`)
  - `orchestrator status ID --json` reports points = 1000000, in <= 1.5 x the 10-point time
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    ORCHESTRATOR,
    PYTHON,
    REPO,
    ensure_repo_on_path,
    fmt_s,
    median,
    orchestrator_env,
    run_child,
    spec_yaml,
    table,
    verdict,
)

SCRIPT = str(Path(__file__).resolve())
BIG, SMALL = 1_000_000, 10
TIME_RATIO, RSS_LIMIT_MB = 1.5, 400.0


def measure_child(argv: list[str]) -> None:
    """Wrapper mode: run argv once, print its wall time, peak RSS, exit code and stdout."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "wall": wall,
                "rss_mb": peak_kb / 1024,
                "rc": proc.returncode,
                "stdout": proc.stdout,
                "stderr": proc.stderr[-2000:],
            }
        )
    )


def measure(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    rc, _, out, err = run_child([PYTHON, SCRIPT, "--measure", *argv], env=env, timeout=120)
    if rc != 0:
        raise RuntimeError(f"measuring {argv} failed ({rc}): {err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{argv} exited {result['rc']}: {result['stderr']}")
    return result


def in_process_submit(data: Path, results: Path, repeats: int) -> dict[int, float]:
    """Service.submit alone (no interpreter start-up, no imports): median seconds per size."""
    ensure_repo_on_path()
    from orchestrator.service import Service
    from orchestrator.settings import Settings
    from orchestrator.spec import parse_document

    service = Service(Settings(data_dir=data, results_url=str(results)))
    try:
        times: dict[int, list[float]] = {SMALL: [], BIG: []}
        for _ in range(repeats):
            for n in (SMALL, BIG):
                spec = parse_document(
                    {
                        "name": f"inproc-{n}",
                        "parameters": {"x": {"range": [0, n]}},
                        "steps": {"noop": {"run": "bench.workloads:noop", "foreach": True}},
                        "results": str(results),
                    }
                )
                start = time.perf_counter()
                service.submit(spec, import_paths=[str(REPO)])
                times[n].append(time.perf_counter() - start)
        return {n: median(v) for n, v in times.items()}
    finally:
        service.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--measure", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure_child(args.measure)
        return 0

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-submit-") as tmp:
        workdir = Path(tmp)
        data = workdir / "data"
        data.mkdir()
        env = orchestrator_env(data)
        specs = {}
        for n in (SMALL, BIG):
            specs[n] = workdir / f"spec-{n}.yaml"
            specs[n].write_text(spec_yaml(f"bench-submit-{n}", n, workdir / "results"))
        # migrate first, so every timed submit sees an existing store
        rc, _, _, err = run_child([ORCHESTRATOR, "list", "--json"], env=env, timeout=120)
        if rc != 0:
            raise RuntimeError(f"orchestrator list failed: {err}")

        print(f"submit, {args.repeats} alternating repeat(s) per size ...", flush=True)
        submits: dict[int, list[dict[str, Any]]] = {SMALL: [], BIG: []}
        ids: dict[int, list[str]] = {SMALL: [], BIG: []}
        for r in range(args.repeats):
            for n in (SMALL, BIG) if r % 2 == 0 else (BIG, SMALL):
                result = measure([ORCHESTRATOR, "submit", str(specs[n])], env)
                submits[n].append(result)
                ids[n].append(result["stdout"].strip().splitlines()[-1])
                print(
                    f"    submit {n:>9,}: {result['wall']:.2f} s, {result['rss_mb']:.0f} MB",
                    flush=True,
                )

        db = data / "orchestrator.db"
        with sqlite3.connect(db) as conn:
            task_rows = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
            stored_points = dict(conn.execute("SELECT id, points FROM campaigns").fetchall())
            events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()

        print(f"status --json, {args.repeats} alternating repeat(s) per size ...", flush=True)
        statuses: dict[int, list[dict[str, Any]]] = {SMALL: [], BIG: []}
        reported: dict[int, set[int]] = {SMALL: set(), BIG: set()}
        for r in range(args.repeats):
            for n in (SMALL, BIG) if r % 2 == 0 else (BIG, SMALL):
                result = measure([ORCHESTRATOR, "status", ids[n][r], "--json"], env)
                statuses[n].append(result)
                status = json.loads(result["stdout"])
                reported[n].add(status["points"])
                if status["counts"]["pending"] != n:
                    raise RuntimeError(f"unexpected counts for a fresh campaign: {status}")

        print("in-process Service.submit ...", flush=True)
        inproc = in_process_submit(workdir / "inproc-data", workdir / "results", 20)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return median([row[key] for row in rows])

    t_small, t_big = med(submits[SMALL], "wall"), med(submits[BIG], "wall")
    m_small, m_big = (
        max(r["rss_mb"] for r in submits[SMALL]),
        max(r["rss_mb"] for r in submits[BIG]),
    )
    s_small, s_big = med(statuses[SMALL], "wall"), med(statuses[BIG], "wall")
    sm_small = max(r["rss_mb"] for r in statuses[SMALL])
    sm_big = max(r["rss_mb"] for r in statuses[BIG])
    big_ids = set(ids[BIG])
    points_ok = reported[BIG] == {BIG} and all(stored_points[i] == BIG for i in big_ids)
    checks = {
        "time": t_big <= TIME_RATIO * t_small,
        "rss": m_big <= RSS_LIMIT_MB,
        "rows": task_rows == 0,
        "status": points_ok and s_big <= TIME_RATIO * s_small,
    }
    n_campaigns = len(stored_points)
    print()
    print(
        f"orchestrator submit / status: 10 vs 1,000,000 points (medians of {args.repeats}; "
        "RSS = max over runs)"
    )
    print(
        table(
            ["", "10 points", "1,000,000 points", "ratio", "target", "result"],
            [
                [
                    "submit wall time",
                    fmt_s(t_small),
                    fmt_s(t_big),
                    f"{t_big / t_small:.2f}",
                    f"<= {TIME_RATIO}",
                    verdict(checks["time"]),
                ],
                [
                    "submit peak RSS",
                    f"{m_small:.0f} MB",
                    f"{m_big:.0f} MB",
                    f"{m_big / m_small:.2f}",
                    f"<= {RSS_LIMIT_MB:.0f} MB",
                    verdict(checks["rss"]),
                ],
                [
                    "task rows after submit",
                    "",
                    f"{task_rows} (all {n_campaigns} campaigns)",
                    "",
                    "0",
                    verdict(checks["rows"]),
                ],
                ["events stored", "", f"{events} (all {n_campaigns} campaigns)", "", "", ""],
                [
                    "status --json wall time",
                    fmt_s(s_small),
                    fmt_s(s_big),
                    f"{s_big / s_small:.2f}",
                    f"<= {TIME_RATIO}",
                    verdict(checks["status"]),
                ],
                [
                    "status --json points",
                    ", ".join(map(str, sorted(reported[SMALL]))),
                    ", ".join(map(str, sorted(reported[BIG]))),
                    "",
                    f"{BIG}",
                    verdict(points_ok),
                ],
                [
                    "status --json peak RSS",
                    f"{sm_small:.0f} MB",
                    f"{sm_big:.0f} MB",
                    f"{sm_big / sm_small:.2f}",
                    "",
                    "",
                ],
                [
                    "Service.submit in-process",
                    f"{inproc[SMALL] * 1000:.1f} ms",
                    f"{inproc[BIG] * 1000:.1f} ms",
                    f"{inproc[BIG] / inproc[SMALL]:.2f}",
                    "(info)",
                    "",
                ],
            ],
        )
    )
    ok = all(checks.values())
    print()
    print(f"all targets: {verdict(ok)}  (total {time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
