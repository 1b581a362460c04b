"""Tests for the f-I curve demo steps, called directly (no engine).

NEURON, eFEL and matplotlib are required test dependencies (the ``demo`` extra): these tests
are not skipped when they are missing, so a broken demo environment fails loudly.
"""

from __future__ import annotations

import csv
import importlib
import itertools
import multiprocessing
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from orchestrator.demo import fi_curve

pytestmark = pytest.mark.demo

SPEC_PATH = Path(fi_curve.__file__).with_name("fi_curve.yaml")
GNABAR = 0.12


def _point(amplitude: float, gnabar: float = GNABAR) -> dict[str, Any]:
    sim = fi_curve.simulate(amplitude=amplitude, gnabar=gnabar)
    return fi_curve.features(simulate=sim, amplitude=amplitude, gnabar=gnabar)


def _ctx(tmp_path: Path) -> types.SimpleNamespace:
    return types.SimpleNamespace(output_dir=tmp_path, point=0, parameters={}, attempt=1)


def test_simulate_returns_trace_and_window() -> None:
    out = fi_curve.simulate(amplitude=0.1, gnabar=GNABAR, duration_ms=300.0)
    assert isinstance(out["t"], np.ndarray) and isinstance(out["v"], np.ndarray)
    assert out["t"].shape == out["v"].shape
    assert out["t"][0] == 0.0 and out["t"][-1] == pytest.approx(300.0)
    assert (out["stim_start_ms"], out["stim_end_ms"]) == (50.0, 250.0)
    # Resting before the stimulus, overshooting action potentials during it.
    before = out["v"][out["t"] < 50.0]
    assert np.all(np.abs(before + 65.0) < 1.0)
    assert out["v"].max() > 20.0


def test_simulate_leaves_no_sections_and_is_repeatable() -> None:
    from neuron import h

    first = fi_curve.simulate(amplitude=0.15, gnabar=GNABAR)
    second = fi_curve.simulate(amplitude=0.15, gnabar=GNABAR)
    assert len(list(h.allsec())) == 0
    np.testing.assert_array_equal(first["v"], second["v"])


def test_simulate_rejects_stimulus_past_end() -> None:
    with pytest.raises(ValueError):
        fi_curve.simulate(amplitude=0.1, gnabar=GNABAR, duration_ms=100.0)


def test_subthreshold_point_has_no_spikes() -> None:
    feats = _point(0.0)
    assert feats == {"amplitude": 0.0, "gnabar": GNABAR, "spike_count": 0, "frequency_hz": 0.0}


def test_suprathreshold_point_spikes() -> None:
    feats = _point(0.2)
    assert feats["spike_count"] >= 10
    assert feats["frequency_hz"] == pytest.approx(feats["spike_count"] / 0.2)
    assert isinstance(feats["spike_count"], int) and isinstance(feats["frequency_hz"], float)


def test_frequency_increases_with_amplitude() -> None:
    freqs = [_point(a)["frequency_hz"] for a in (0.0, 0.05, 0.1, 0.17, 0.24)]
    assert all(b >= a for a, b in itertools.pairwise(freqs)), freqs
    assert freqs[0] == 0.0 and freqs[-1] > freqs[2] > freqs[1] > 0.0


def test_features_accepts_lists_from_a_stored_result() -> None:
    sim = fi_curve.simulate(amplitude=0.2, gnabar=GNABAR)
    as_lists = {**sim, "t": sim["t"].tolist(), "v": sim["v"].tolist()}
    direct = fi_curve.features(simulate=sim, amplitude=0.2, gnabar=GNABAR)
    assert fi_curve.features(simulate=as_lists, amplitude=0.2, gnabar=GNABAR) == direct


def _simulate_spike_count(amplitude: float) -> int:
    return _point(amplitude)["spike_count"]


def test_simulate_in_separate_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        counts = list(pool.map(_simulate_spike_count, [0.0, 0.2]))
    assert counts == [0, _point(0.2)["spike_count"]]


def test_summary_writes_plot_and_table(tmp_path: Path) -> None:
    amplitudes = [0.0, 0.05, 0.1, 0.2]
    feats: list[dict[str, Any] | None] = [
        _point(a, g) for g in (0.10, 0.14) for a in reversed(amplitudes)
    ]
    feats.append(None)  # a point that produced no features is skipped

    out = fi_curve.summary(features=feats, ctx=_ctx(tmp_path))

    assert out["points"] == 8
    plot = Path(out["plot"])
    assert plot == tmp_path / "fi_curve.png"
    data = plot.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n")

    with Path(out["table"]).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    assert list(rows[0]) == ["amplitude_nA", "gnabar_S_cm2", "spike_count", "frequency_hz"]
    keys = [(float(r["gnabar_S_cm2"]), float(r["amplitude_nA"])) for r in rows]
    assert keys == sorted(keys)

    # 0.05 nA fires for both conductances, 0.0 nA for neither.
    assert out["rheobase_nA"] == {"0.1": 0.05, "0.14": 0.05}


def test_summary_without_ctx_writes_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = fi_curve.summary(features=[_point(0.0)])
    assert Path(out["plot"]).parent == tmp_path and Path(out["table"]).exists()
    assert out["rheobase_nA"] == {str(GNABAR): None}


def test_campaign_spec_is_consistent() -> None:
    spec = yaml.safe_load(SPEC_PATH.read_text())
    for step in spec["steps"].values():
        module_name, _, func_name = step["run"].partition(":")
        assert callable(getattr(importlib.import_module(module_name), func_name))

    # The amplitude range brackets the rheobase for every gnabar in the sweep.
    low, high, _ = spec["parameters"]["amplitude"]["linspace"]
    duration = spec["steps"]["simulate"]["with"]["duration_ms"]
    for gnabar in spec["parameters"]["gnabar"]:
        for amplitude, spikes in ((low, False), (high, True)):
            sim = fi_curve.simulate(amplitude=amplitude, gnabar=gnabar, duration_ms=duration)
            feats = fi_curve.features(simulate=sim, amplitude=amplitude, gnabar=gnabar)
            assert (feats["spike_count"] > 0) is spikes, (gnabar, amplitude)
