"""f-I curve demo campaign: a Hodgkin-Huxley soma driven by current steps.

The three functions are campaign steps (see ``fi_curve.yaml``): ``simulate`` runs NEURON for one
(amplitude, gnabar) point, ``features`` extracts spike count and firing rate with eFEL, and
``summary`` plots the f-I curves and tabulates them. They are called by the engine on Dask
worker processes with keyword arguments, so they keep no NEURON model state between calls:
every call builds its own soma and lets it go afterwards.
"""

from __future__ import annotations

import csv
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["features", "simulate", "summary"]

# NEURON and eFEL keep process-wide state (one simulation clock, one settings object), so every
# use of them in this module is serialized, even though the engine already runs one task per
# process at a time.
_NEURON_LOCK = threading.Lock()
_EFEL_LOCK = threading.Lock()
_stdrun_loaded = False

SOMA_LENGTH_UM = 20.0
SOMA_DIAM_UM = 20.0
DT_MS = 0.025
CELSIUS = 6.3  # the temperature the hh rate constants are written for
V_INIT_MV = -65.0
SPIKE_THRESHOLD_MV = -20.0


def _neuron_h() -> Any:
    """Import NEURON lazily (the module stays importable without it) and load stdrun once.

    Must be called with ``_NEURON_LOCK`` held.
    """
    global _stdrun_loaded
    # Workers are headless; without this NEURON probes for an X display on import.
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    from neuron import h

    if not _stdrun_loaded:
        h.load_file("stdrun.hoc")
        _stdrun_loaded = True
    return h


def simulate(
    amplitude: float,
    gnabar: float,
    duration_ms: float = 300.0,
    stim_start_ms: float = 50.0,
    stim_dur_ms: float = 200.0,
    ctx: Any = None,
) -> dict[str, Any]:
    """Simulate a single-compartment HH soma under a current step of ``amplitude`` nA.

    ``gnabar`` is the peak sodium conductance (S/cm2). Returns the voltage trace as numpy arrays
    (large, so the engine stores it as a file) plus the stimulus window for feature extraction.
    ``ctx`` is accepted for the engine's calling convention and not used.
    """
    duration_ms = float(duration_ms)
    stim_start_ms = float(stim_start_ms)
    stim_dur_ms = float(stim_dur_ms)
    stim_end_ms = stim_start_ms + stim_dur_ms
    if duration_ms <= 0 or stim_dur_ms <= 0 or stim_start_ms < 0:
        raise ValueError("duration_ms and stim_dur_ms must be > 0 and stim_start_ms >= 0")
    if stim_end_ms > duration_ms:
        raise ValueError(
            f"stimulus ends at {stim_end_ms} ms, after the simulation ({duration_ms} ms)"
        )

    with _NEURON_LOCK:
        t, v = _run_soma(
            _neuron_h(), float(amplitude), float(gnabar), duration_ms, stim_start_ms, stim_dur_ms
        )

    return {"t": t, "v": v, "stim_start_ms": stim_start_ms, "stim_end_ms": stim_end_ms}


def _run_soma(
    h: Any,
    amplitude: float,
    gnabar: float,
    duration_ms: float,
    stim_start_ms: float,
    stim_dur_ms: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Build the soma, run it, and delete it again so no section outlives the call.

    Deleting explicitly (rather than relying on the last reference going away) also covers a
    failed run whose traceback the caller keeps alive. Must be called with ``_NEURON_LOCK`` held.
    """
    soma = h.Section(name="fi_soma")
    try:
        soma.L = SOMA_LENGTH_UM
        soma.diam = SOMA_DIAM_UM
        soma.nseg = 1
        soma.insert("hh")
        for seg in soma:
            seg.hh.gnabar = gnabar

        stim = h.IClamp(soma(0.5))
        stim.delay = stim_start_ms
        stim.dur = stim_dur_ms
        stim.amp = amplitude

        t_vec = h.Vector().record(h._ref_t)
        v_vec = h.Vector().record(soma(0.5)._ref_v)

        # Process-wide settings another caller may have changed: set them on every run.
        h.CVode().active(0)
        h.dt = DT_MS
        h.celsius = CELSIUS
        h.finitialize(V_INIT_MV)
        h.continuerun(duration_ms)

        return np.array(t_vec, dtype=float), np.array(v_vec, dtype=float)
    finally:
        h.delete_section(sec=soma)


def features(
    simulate: dict[str, Any], amplitude: float, gnabar: float, ctx: Any = None
) -> dict[str, Any]:
    """Spike count and mean firing rate over the stimulus window, via eFEL.

    The rate is eFEL's ``Spikecount_stimint`` divided by the window length. eFEL's own
    ``mean_frequency`` divides by the time to the last spike instead, which reports a single
    onset spike as hundreds of Hz and would make the f-I curve non-monotonic.
    """
    start = float(simulate["stim_start_ms"])
    end = float(simulate["stim_end_ms"])
    trace = {
        "T": np.asarray(simulate["t"], dtype=float),
        "V": np.asarray(simulate["v"], dtype=float),
        "stim_start": [start],
        "stim_end": [end],
    }

    import efel

    with _EFEL_LOCK:
        settings = efel.get_settings()
        previous_threshold = settings.Threshold
        efel.set_setting("Threshold", SPIKE_THRESHOLD_MV)
        try:
            results = efel.get_feature_values([trace], ["Spikecount_stimint"], raise_warnings=False)
        finally:
            efel.set_setting("Threshold", previous_threshold)

    count_values = results[0].get("Spikecount_stimint")
    spike_count = int(count_values[0]) if count_values is not None and len(count_values) else 0
    frequency_hz = spike_count / ((end - start) / 1000.0)
    return {
        "amplitude": float(amplitude),
        "gnabar": float(gnabar),
        "spike_count": spike_count,
        "frequency_hz": float(frequency_hz),
    }


def summary(features: list[dict[str, Any] | None], ctx: Any = None) -> dict[str, Any]:
    """Plot and tabulate the f-I curves of all points and find the rheobase per gnabar.

    Writes ``fi_curve.png`` and ``fi_table.csv`` to ``ctx.output_dir`` (the current directory
    without a ctx). Points that produced no features (``None``) are skipped.
    """
    out_dir = Path(ctx.output_dir) if ctx is not None else Path.cwd()
    out_dir.mkdir(parents=True, exist_ok=True)

    rows = sorted(
        (f for f in features if f is not None),
        key=lambda f: (float(f["gnabar"]), float(f["amplitude"])),
    )
    curves: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        curves[float(row["gnabar"])].append(row)

    rheobase: dict[str, float | None] = {}
    for gnabar, curve in curves.items():
        spiking = [float(r["amplitude"]) for r in curve if int(r["spike_count"]) >= 1]
        rheobase[str(gnabar)] = min(spiking) if spiking else None

    table_path = out_dir / "fi_table.csv"
    with table_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["amplitude_nA", "gnabar_S_cm2", "spike_count", "frequency_hz"])
        for row in rows:
            writer.writerow(
                [
                    float(row["amplitude"]),
                    float(row["gnabar"]),
                    int(row["spike_count"]),
                    float(row["frequency_hz"]),
                ]
            )

    plot_path = out_dir / "fi_curve.png"
    _plot(curves, rheobase, plot_path)

    return {
        "plot": str(plot_path),
        "table": str(table_path),
        "points": len(rows),
        "rheobase_nA": rheobase,
    }


def _plot(
    curves: dict[float, list[dict[str, Any]]], rheobase: dict[str, float | None], path: Path
) -> None:
    """Draw the curves with a bare ``Figure``: no pyplot, so no global backend/figure state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for gnabar, curve in curves.items():
        amps = [float(r["amplitude"]) for r in curve]
        freqs = [float(r["frequency_hz"]) for r in curve]
        rb = rheobase[str(gnabar)]
        rb_text = f"rheobase {rb:g} nA" if rb is not None else "no spikes"
        ax.plot(amps, freqs, marker="o", label=f"gnabar = {gnabar:g} S/cm² ({rb_text})")
    ax.set_xlabel("Injected current (nA)")
    ax.set_ylabel("Mean firing rate over stimulus (Hz)")
    ax.set_title("f\N{EN DASH}I curve of a Hodgkin\N{EN DASH}Huxley soma")
    if curves:
        ax.legend(loc="upper left", fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=120)
