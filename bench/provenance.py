"""Registering provenance in the embedded knowledge graph: the old path vs the new one.

    .venv/bin/python bench/provenance.py          # ~30 s

What the registrar does with 5000 task registrations (each a `TaskActivity`, parameters of
several types, a SLURM job id and the collection of its outputs, plus one `OutputEntity`;
the campaign in the first batch), in batches of 1000 registrations, into a fresh
`EmbeddedKnowledgeGraph` in a temp dir (opened and closed per batch, flushed, as in the
service):

  - old: `to_jsonld` parsed by pyoxigraph's JSON-LD parser, the batch as one SPARQL update
    (`DROP SILENT GRAPH` + `INSERT DATA` per item): `register_via_sparql`;
  - new: quads built directly (`prov.to_quads`), new items added with `Store.bulk_extend`
    (what the registrar's own process does: it is the process's only Python thread);
  - new, extend: the same quads added with `Store.extend` (what `register` does when other
    Python threads share the process: `bulk_extend` holds the GIL, `extend` does not).

CPU time is the process's (`time.process_time`: RocksDB's background threads included).
"build" is the CPU of making the statements (and, old, the update's text) alone, measured
apart once; "store" is the rest. The paths alternate, `--repeats` times; medians. At the end the
stores are compared: they must hold the same statements. Target: new >= 3x cheaper.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ensure_repo_on_path, fmt_s, median, table, verdict

ensure_repo_on_path()

import pyoxigraph  # noqa: E402

from orchestrator.kg import (  # noqa: E402
    CampaignProvenance,
    EmbeddedKnowledgeGraph,
    OutputEntity,
    Registrable,
    TaskActivity,
    TaskRef,
)
from orchestrator.kg.embedded import _graphs, _replacing_update  # noqa: E402
from orchestrator.kg.prov import to_quads, to_quads_via_jsonld  # noqa: E402

TASKS, BATCH = 5000, 1000
TARGET = 3.0
PROJECT, CAMPAIGN = "lab/p1", "c-bench"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def registrations(n: int) -> list[list[Registrable]]:
    """One list of items per registration, as `outbox.to_registrables` makes them."""
    spec = {"name": "bench", "parameters": {"x": {"range": [0, n]}}}
    first: list[Registrable] = [
        CampaignProvenance(PROJECT, CAMPAIGN, "bench", spec, "alice", T0, state="running")
    ]
    found = []
    for point in range(n):
        ref = TaskRef(PROJECT, CAMPAIGN, "simulate", point, 0)
        ended = T0 + timedelta(seconds=10 + point)
        task = TaskActivity(
            ref=ref,
            parameters={"x": point, "amplitude": 0.1 * point, "model": "L5_TTPC", "fast": True},
            state="succeeded",
            started_at=T0 + timedelta(seconds=point),
            ended_at=ended,
            slurm_job_id=str(100000 + point),
            outputs=("trace.npz",),
        )
        out = OutputEntity(
            generated_by=ref,
            relpath="trace.npz",
            location=f"s3://results/{CAMPAIGN}/simulate/{point}/trace.npz",
            size=1024 + point,
            digest="sha256:" + f"{point:064x}",
            generated_at=ended,
        )
        found.append([*(first if point == 0 else []), task, out])
    return found


def batches(n: int) -> list[list[Registrable]]:
    """Fresh records for one run (they cache their IRIs, as the registrar's records do for
    the one registration they are made for), in batches of BATCH registrations."""
    regs = registrations(n)
    return [[i for reg in regs[k : k + BATCH] for i in reg] for k in range(0, n, BATCH)]


def timed(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def run(path: Path, way: str, todo: list[list[Registrable]]) -> tuple[float, float]:
    """CPU and wall seconds to register every batch into a fresh store at `path`."""
    kg = EmbeddedKnowledgeGraph(path, bulk_load=way == "new")
    register = kg.register_via_sparql if way == "old" else kg.register
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in todo:
        register(batch)
    return time.process_time() - cpu, time.perf_counter() - wall


def build(way: str, todo: list[list[Registrable]]) -> float:
    """CPU seconds to make the statements alone (old: and the SPARQL update's text)."""
    if way == "old":
        return timed(lambda: [_replacing_update(_graphs(b, to_quads_via_jsonld)) for b in todo])
    return timed(lambda: [_graphs(b, to_quads) for b in todo])


def statements(path: Path) -> set[str]:
    store = pyoxigraph.Store.read_only(str(path))
    try:
        return {str(quad) for quad in store}
    finally:
        del store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    ways = ["old", "new", "new, extend"]
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    wall: dict[str, list[float]] = {way: [] for way in ways}
    made: dict[str, list[float]] = {way: [] for way in ways}
    same = True
    with tempfile.TemporaryDirectory(prefix="bench-provenance-") as tmp:
        print(
            f"{args.tasks} task registrations (task + output), batches of {BATCH}, "
            f"{args.repeats} alternating repeat(s) ...",
            flush=True,
        )
        for repeat in range(args.repeats):
            for way in ways:
                if repeat == 0:
                    made[way].append(build(way, batches(args.tasks)))
                todo = batches(args.tasks)
                path = Path(tmp) / f"{way.replace(', ', '-')}-{repeat}"
                c, w = run(path, way, todo)
                cpu[way].append(c)
                wall[way].append(w)
                print(f"  {way:12s} {c:6.2f} s CPU, {w:6.2f} s wall", flush=True)
        reference = statements(Path(tmp) / "old-0")
        for way in ways[1:]:
            same = same and statements(Path(tmp) / f"{way.replace(', ', '-')}-0") == reference

    n = args.tasks
    old = median(cpu["old"])
    rows = []
    for way in ways:
        c, b = median(cpu[way]), median(made[way])
        rows.append(
            [
                way,
                f"{n / c:,.0f}/s",
                f"{c / n * 1000:.3f} ms",
                f"{b / n * 1000:.3f} ms",
                f"{max(c - b, 0.0) / n * 1000:.3f} ms",
                fmt_s(c),
                fmt_s(median(wall[way])),
                f"{old / c:.2f}x",
            ]
        )
    ratio = old / median(cpu["new"])
    ok = ratio >= TARGET and same
    print()
    print(
        f"embedded registration, {n} tasks (+1 output each) in batches of {BATCH}: CPU per "
        f"registration (medians of {args.repeats})"
    )
    print(
        table(
            ["path", "registrations/s", "ms/reg", "build", "store", "CPU", "wall", "vs old"],
            rows,
        )
    )
    print()
    print(f"new vs old: {ratio:.2f}x cheaper (target >= {TARGET:g}x): {verdict(ratio >= TARGET)}")
    print(f"same statements in every store: {'yes' if same else 'NO'}: {verdict(same)}")
    print(f"all targets: {verdict(ok)}  (total {time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
