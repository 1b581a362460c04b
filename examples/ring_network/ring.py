"""A ring of Hodgkin–Huxley cells, distributed over MPI ranks with NEURON's ParallelContext.

Cell i excites cell i+1 (ExpSyn + NetCon, `weight` µS after `delay` ms); one stimulus starts
cell 0. Whether the activity goes round the ring depends on the weight. Run it with `srun`:

    srun --mpi=pmix python ring.py --weight 0.01 --delay 2 --output .

Each rank simulates the cells whose gid % nhost == rank, writes its own spikes to
`spikes-rank{N}.txt`; rank 0 gathers every rank's spikes into `spikes.txt` and writes
`result.json` (the task's result). The parallel simulation is exact: the same spikes on any
number of ranks.

As a module (no MPI, no NEURON import) it also gives the campaign the interpreter and the path
of this script (`python`, `ring_py`), and the analysis of a raster (`summarise`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# --- for the campaign: where things are, as the workers see them ----------------------------


def python() -> str:
    """The interpreter of the workers (it has NEURON): the batch step runs ring.py with it."""
    return sys.executable


def ring_py() -> str:
    """This file's path on the cluster (the spec's folder is shared with the nodes)."""
    return str(Path(__file__).resolve())


# --- analysis (pure Python) ------------------------------------------------------------------


def summarise(
    spikes: Sequence[Sequence[float]], n_cells: int, tstop: float, stim_ms: float
) -> dict[str, Any]:
    """Spike count, mean rate, cells reached, and the time the activity took to go round the
    ring: from cell 0's first spike to its next one, which only the last cell can cause."""
    ordered = sorted((float(t), int(gid)) for t, gid in spikes)
    first0 = [t for t, gid in ordered if gid == 0]
    round_trip = first0[1] - first0[0] if len(first0) > 1 else None
    reached = len({gid for _, gid in ordered})
    return {
        "spike_count": len(ordered),
        "mean_rate_hz": len(ordered) / n_cells / (tstop / 1000.0),
        "cells_reached": reached,
        "propagates": reached == n_cells,
        "round_trip_ms": round_trip,
        "first_spike_ms": ordered[0][0] if ordered else None,
        "stim_ms": stim_ms,
    }


# --- the simulation (under MPI) --------------------------------------------------------------


class Cell:
    """A Hodgkin–Huxley soma with an excitatory synapse."""

    def __init__(self, h: Any, gid: int):
        self.gid = gid
        self.soma = h.Section(name=f"soma_{gid}")
        self.soma.L = self.soma.diam = 20.0
        self.soma.insert("hh")
        self.syn = h.ExpSyn(self.soma(0.5))
        self.syn.tau = 2.0
        self.syn.e = 0.0


def simulate(args: argparse.Namespace) -> None:
    from neuron import h

    h.nrnmpi_init()  # MPI from the pip wheel: loads libmpi at run time
    h.load_file("stdrun.hoc")
    pc = h.ParallelContext()
    rank, nhost = int(pc.id()), int(pc.nhost())
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    cells = {}
    for gid in range(rank, args.cells, nhost):  # round-robin
        pc.set_gid2node(gid, rank)
        cell = Cell(h, gid)
        detector = h.NetCon(cell.soma(0.5)._ref_v, None, sec=cell.soma)
        detector.threshold = 10.0
        pc.cell(gid, detector)
        cells[gid] = cell
    connections = []
    for gid, cell in cells.items():  # each cell listens to the previous one
        nc = pc.gid_connect((gid - 1) % args.cells, cell.syn)
        nc.weight[0] = args.weight
        nc.delay = args.delay
        connections.append(nc)
    stim = None
    if 0 in cells:  # one event starts cell 0
        stim = h.NetStim()
        stim.number, stim.start = 1, args.stim
        kick = h.NetCon(stim, cells[0].syn)
        kick.weight[0], kick.delay = 0.05, 0.0
        connections.append(kick)

    times, gids = h.Vector(), h.Vector()
    pc.spike_record(-1, times, gids)
    if rank == args.exit_rank:  # a rank that dies, for tests of what SLURM makes of it
        print(f"rank {rank}: exiting with code 3 on purpose", file=sys.stderr, flush=True)
        os._exit(3)

    pc.set_maxstep(10)
    h.finitialize(-65)
    pc.psolve(args.tstop)

    mine = sorted(zip(times.to_python(), (int(g) for g in gids.to_python()), strict=True))
    (out / f"spikes-rank{rank}.txt").write_text("".join(f"{t!r} {g}\n" for t, g in mine))
    gathered = pc.py_gather(mine, 0)
    if rank == 0:
        spikes = sorted(s for part in gathered for s in part)
        (out / "spikes.txt").write_text("".join(f"{t!r} {g}\n" for t, g in spikes))
        result = {
            "weight": args.weight,
            "delay": args.delay,
            "cells": args.cells,
            "tstop": args.tstop,
            "ranks": nhost,
            **summarise(spikes, args.cells, args.tstop, args.stim),
            "spikes": [[t, g] for t, g in spikes],
        }
        tmp = out / "result.json.tmp"
        tmp.write_text(json.dumps(result))
        tmp.replace(out / "result.json")
    pc.barrier()
    pc.done()
    h.quit()


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weight", type=float, required=True, help="synaptic weight (µS)")
    p.add_argument("--delay", type=float, required=True, help="synaptic delay (ms)")
    p.add_argument("--cells", type=int, default=12)
    p.add_argument("--tstop", type=float, default=150.0, help="simulated time (ms)")
    p.add_argument("--stim", type=float, default=1.0, help="when cell 0 is kicked (ms)")
    p.add_argument("--output", default=".", help="folder for spikes and result.json")
    p.add_argument("--exit-rank", type=int, default=-1, help="this rank exits with code 3")
    p.add_argument("--tag", default="", help="ignored: a marker for the job's command line")
    return p.parse_args(argv)


if __name__ == "__main__":
    simulate(parse())
