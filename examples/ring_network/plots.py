"""The fan-in step of the ring campaign: rate against weight and delay, and a few rasters."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def plot(
    simulate: list[dict[str, Any] | None], ctx: Any = None, rasters: int = 4
) -> dict[str, Any]:
    """Writes `rate.png` (mean rate against weight, one line per delay; round-trip time
    below) and `rasters.png` (the spikes of a few points) to the task's folder."""
    from matplotlib.figure import Figure

    out = Path(ctx.output_dir) if ctx is not None else Path.cwd()
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted((r for r in simulate if r), key=lambda r: (r["delay"], r["weight"]))
    by_delay: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_delay[row["delay"]].append(row)

    fig = Figure(figsize=(7, 6), layout="constrained")
    rate, trip = fig.subplots(2, 1, sharex=True)
    for delay, curve in by_delay.items():
        weights = [r["weight"] * 1000 for r in curve]
        rate.plot(weights, [r["mean_rate_hz"] for r in curve], marker="o", label=f"{delay:g} ms")
        trip.plot(
            weights,
            [r["round_trip_ms"] if r["round_trip_ms"] is not None else float("nan") for r in curve],
            marker="o",
        )
    rate.set_ylabel("mean rate (Hz)")
    rate.legend(title="synaptic delay", fontsize="small")
    rate.set_title(
        f"Ring of {rows[0]['cells']} HH cells on {rows[0]['ranks']} MPI ranks" if rows else ""
    )
    trip.set_ylabel("time round the ring (ms)")
    trip.set_xlabel("synaptic weight (nS)")
    for ax in (rate, trip):
        ax.grid(True, alpha=0.3)
    fig.savefig(out / "rate.png", dpi=110)

    shown = _pick(rows, rasters)
    fig = Figure(figsize=(7, 1.6 * max(1, len(shown)) + 0.6), layout="constrained")
    axes = fig.subplots(max(1, len(shown)), 1, sharex=True, squeeze=False)[:, 0]
    for ax, row in zip(axes, shown, strict=False):
        times = [t for t, _ in row["spikes"]]
        gids = [g for _, g in row["spikes"]]
        ranks = [g % row["ranks"] for g in gids]  # round-robin: the rank that simulated it
        top = max(1, row["ranks"] - 1)
        ax.scatter(times, gids, s=30, marker="|", c=ranks, cmap="coolwarm", vmin=0, vmax=top)
        ax.set_ylim(-0.5, row["cells"] - 0.5)
        ax.set_ylabel("gid")
        ax.set_title(
            f"weight {row['weight'] * 1000:g} nS, delay {row['delay']:g} ms: "
            f"{row['spike_count']} spikes",
            fontsize="small",
        )
    axes[-1].set_xlabel("time (ms)  (colour: the MPI rank that simulated the cell)")
    fig.savefig(out / "rasters.png", dpi=110)

    propagating = [r for r in rows if r["propagates"]]
    threshold = {
        str(delay): min((r["weight"] for r in curve if r["propagates"]), default=None)
        for delay, curve in by_delay.items()
    }
    return {
        "points": len(rows),
        "propagating": len(propagating),
        "lowest_propagating_weight": threshold,
        "figures": [str(out / "rate.png"), str(out / "rasters.png")],
    }


def _pick(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """A few points spread over the sweep: silent and propagating ones alike."""
    if len(rows) <= n:
        return rows
    step = (len(rows) - 1) / (n - 1)
    return [rows[round(i * step)] for i in range(n)]
