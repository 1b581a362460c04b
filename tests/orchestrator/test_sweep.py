"""Lazy parameter sweeps (orchestrator.sweep): indexing, order, axis values, laziness."""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.spec import load_text
from orchestrator.sweep import Axis, LinspaceAxis, ListAxis, RangeAxis, Sweep

SETTINGS = settings(max_examples=150, deadline=None)
NAMES = ["alpha", "beta", "gamma", "delta"]

# ----------------------------------------------------------------- strategies
list_values = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
)


@st.composite
def list_axis(draw: st.DrawFn, length: int) -> ListAxis:
    # unique=True dedups by hash/equality, so 1, 1.0 and True never share an axis
    values = draw(st.lists(list_values, min_size=length, max_size=length, unique=True))
    return ListAxis(tuple(values))


@st.composite
def linspace_axis(draw: st.DrawFn, length: int) -> LinspaceAxis:
    start = draw(st.floats(-1000, 1000, allow_nan=False, allow_infinity=False))
    stop = draw(st.floats(-1000, 1000, allow_nan=False, allow_infinity=False))
    if length > 1:
        assume(abs(stop - start) > 1e-3)  # distinct values
    return LinspaceAxis(start, stop, length)


@st.composite
def int_range_axis(draw: st.DrawFn, length: int) -> RangeAxis:
    start = draw(st.integers(-100, 100))
    step = draw(st.integers(-7, 7).filter(bool))
    sign = 1 if step > 0 else -1
    # stop anywhere after the last value but not as far as the next one
    stop = start + step * (length - 1) + sign * draw(st.integers(1, abs(step)))
    assert len(range(start, stop, step)) == length
    return RangeAxis(start, stop, step)


@st.composite
def float_range_axis(draw: st.DrawFn, length: int) -> RangeAxis:
    start = draw(st.floats(-100, 100, allow_nan=False, allow_infinity=False))
    magnitude = draw(st.floats(0.01, 10, allow_nan=False, allow_infinity=False))
    step = magnitude if draw(st.booleans()) else -magnitude
    stop = start + step * (length - 0.5)
    axis = RangeAxis(start, stop, step)
    assume(len(axis) == length)
    return axis


def axis_of_length(length: int) -> st.SearchStrategy[Axis]:
    return st.one_of(
        list_axis(length), linspace_axis(length), int_range_axis(length), float_range_axis(length)
    )


@st.composite
def product_sweeps(draw: st.DrawFn) -> Sweep:
    n_axes = draw(st.integers(1, 4))
    axes = {NAMES[k]: draw(st.integers(1, 5).flatmap(axis_of_length)) for k in range(n_axes)}
    return Sweep(axes, "product")


@st.composite
def zip_sweeps(draw: st.DrawFn) -> Sweep:
    n_axes = draw(st.integers(1, 4))
    length = draw(st.integers(1, 8))
    axes = {NAMES[k]: draw(axis_of_length(length)) for k in range(n_axes)}
    return Sweep(axes, "zip")


def axis_values(axis: Axis) -> list[Any]:
    return [axis.value(i) for i in range(len(axis))]


def as_key(point: dict[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    # include the type, so that 1 and 1.0 or 0 and False count as different values
    return tuple((name, type(v).__name__, v) for name, v in sorted(point.items()))


# ------------------------------------------------------------- product sweeps
@SETTINGS
@given(product_sweeps())
def test_product_len_is_the_product_of_axis_lengths(sweep: Sweep) -> None:
    assert len(sweep) == math.prod(len(axis) for axis in sweep.axes.values())


@SETTINGS
@given(product_sweeps())
def test_product_index_inverts_point(sweep: Sweep) -> None:
    for i in range(len(sweep)):
        assert sweep.index(sweep.point(i)) == i


@SETTINGS
@given(product_sweeps())
def test_product_points_are_distinct(sweep: Sweep) -> None:
    points = [sweep.point(i) for i in range(len(sweep))]
    assert len({as_key(p) for p in points}) == len(sweep)
    assert all(list(p) == list(sweep.names) for p in points)


@SETTINGS
@given(product_sweeps())
def test_product_order_is_itertools_product(sweep: Sweep) -> None:
    expected = [
        dict(zip(sweep.names, combo, strict=True))
        for combo in itertools.product(*(axis_values(a) for a in sweep.axes.values()))
    ]
    assert list(sweep.iter_points()) == expected
    assert [sweep.point(i) for i in range(len(sweep))] == expected


def test_product_order_small_explicit() -> None:
    sweep = Sweep({"a": ListAxis((1, 2)), "b": ListAxis(("x", "y", "z"))})
    assert list(sweep.iter_points()) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]
    assert sweep.index({"b": "z", "a": 2}) == 5
    assert sweep.names == ["a", "b"]


def test_iter_points_window() -> None:
    sweep = Sweep({"a": RangeAxis(0, 3), "b": RangeAxis(0, 4)})
    assert list(sweep.iter_points(5, 8)) == [sweep.point(i) for i in (5, 6, 7)]
    assert list(sweep.iter_points(10, 1000)) == [{"a": 2, "b": 2}, {"a": 2, "b": 3}]
    assert list(sweep.iter_points(12)) == []


# ----------------------------------------------------------------- zip sweeps
@SETTINGS
@given(zip_sweeps())
def test_zip_len_index_and_rows(sweep: Sweep) -> None:
    lengths = {len(axis) for axis in sweep.axes.values()}
    assert len(lengths) == 1
    assert len(sweep) == lengths.pop()
    for i in range(len(sweep)):
        point = sweep.point(i)
        assert point == {name: axis.value(i) for name, axis in sweep.axes.items()}
        assert sweep.index(point) == i


def test_zip_explicit() -> None:
    sweep = Sweep({"a": ListAxis((1, 2, 3)), "b": RangeAxis(10, 40, 10)}, "zip")
    assert len(sweep) == 3
    assert list(sweep.iter_points()) == [{"a": 1, "b": 10}, {"a": 2, "b": 20}, {"a": 3, "b": 30}]
    with pytest.raises(ValueError):
        sweep.index({"a": 1, "b": 20})  # values from different rows


def test_zip_of_unequal_axes_is_rejected() -> None:
    with pytest.raises(ValueError, match="same length"):
        Sweep({"a": ListAxis((1, 2, 3)), "b": ListAxis((1, 2))}, "zip")


# --------------------------------------------------------- edges and errors
@pytest.mark.parametrize("mode", ["product", "zip"])
def test_empty_parameters_have_exactly_one_empty_point(mode: Any) -> None:
    sweep = Sweep({}, mode)
    assert len(sweep) == 1
    assert sweep.point(0) == {}
    assert list(sweep.iter_points()) == [{}]
    assert sweep.index({}) == 0
    with pytest.raises(IndexError):
        sweep.point(1)


@pytest.mark.parametrize("mode", ["product", "zip"])
@pytest.mark.parametrize("offset", [0, 1, 10**12])
def test_index_past_the_end_raises_index_error(mode: Any, offset: int) -> None:
    sweep = Sweep({"a": RangeAxis(0, 3), "b": ListAxis(("x", "y", "z"))}, mode)
    with pytest.raises(IndexError):
        sweep.point(len(sweep) + offset)


@pytest.mark.parametrize("mode", ["product", "zip"])
@pytest.mark.parametrize("index", [-1, -2, -(10**12)])
def test_negative_index_raises_index_error(mode: Any, index: int) -> None:
    sweep = Sweep({"a": RangeAxis(0, 3), "b": ListAxis(("x", "y", "z"))}, mode)
    with pytest.raises(IndexError):
        sweep.point(index)


def test_index_of_a_point_not_in_the_sweep() -> None:
    sweep = Sweep({"a": RangeAxis(0, 3), "b": LinspaceAxis(0.0, 1.0, 5)})
    with pytest.raises(ValueError):
        sweep.index({"a": 3, "b": 0.0})
    with pytest.raises(ValueError):
        sweep.index({"a": 0, "b": 0.1})
    with pytest.raises(ValueError):
        sweep.index({"a": 0})
    with pytest.raises(ValueError):
        sweep.index({"a": 0, "b": 0.0, "c": 1})


@pytest.mark.parametrize(
    "axis", [LinspaceAxis(0.0, 1.0, 4), RangeAxis(0, 4), RangeAxis(0.0, 1.0, 0.25)]
)
@pytest.mark.parametrize("i", [-1, 4, 100])
def test_axis_value_out_of_range(axis: Axis, i: int) -> None:
    assert len(axis) == 4
    with pytest.raises(IndexError):
        axis.value(i)


# ------------------------------------------------------------ linspace values
@SETTINGS
@given(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.integers(1, 60),
)
def test_linspace_matches_numpy(start: float, stop: float, n: int) -> None:
    axis = LinspaceAxis(start, stop, n)
    expected = np.linspace(start, stop, n)
    values = axis_values(axis)
    assert len(axis) == n == len(values)
    assert values[0] == expected[0] == start  # endpoints exactly
    assert values[-1] == expected[-1] == (stop if n > 1 else start)
    scale = max(1.0, abs(start), abs(stop))
    for got, want in zip(values, expected.tolist(), strict=True):
        assert type(got) is float
        assert abs(got - want) <= 1e-12 * scale


def test_linspace_explicit() -> None:
    axis = LinspaceAxis(0.0, 0.5, 11)
    assert axis_values(axis) == pytest.approx([i / 20 for i in range(11)], abs=1e-15)
    assert axis.value(10) == 0.5
    assert axis.index(0.5) == 10
    assert axis.index(axis.value(3)) == 3
    with pytest.raises(ValueError):
        axis.index(0.26)


def test_linspace_single_value_matches_numpy() -> None:
    # was: value(0) returned stop when n == 1
    axis = LinspaceAxis(0.0, 5.0, 1)
    assert axis.value(0) == np.linspace(0.0, 5.0, 1)[0] == 0.0
    assert axis.index(0.0) == 0
    with pytest.raises(ValueError):
        axis.index(5.0)


# --------------------------------------------------------------- range values
@SETTINGS
@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-50, 50).filter(bool))
def test_int_range_matches_python_range(start: int, stop: int, step: int) -> None:
    axis = RangeAxis(start, stop, step)
    expected = range(start, stop, step)
    assert len(axis) == len(expected)
    assert axis_values(axis) == list(expected)
    assert all(type(v) is int for v in axis_values(axis))
    for i, v in enumerate(expected):
        assert axis.index(v) == i


def test_int_range_len_is_exact_for_huge_ranges() -> None:
    # was: __len__ divided in float, so 2**53 + 1 values counted as 2**53
    assert len(RangeAxis(0, 2**53 + 1)) == len(range(0, 2**53 + 1)) == 2**53 + 1


@SETTINGS
@given(
    st.integers(-(10**15), 10**15),
    st.integers(-(10**15), 10**15),
    st.integers(-(10**6), 10**6).filter(bool),
)
def test_int_range_len_and_values_match_python_range_for_big_ints(
    start: int, stop: int, step: int
) -> None:
    axis = RangeAxis(start, stop, step)
    expected = range(start, stop, step)
    assert len(axis) == len(expected)
    for i in {0, len(expected) // 2, len(expected) - 1} if len(expected) else ():
        assert axis.value(i) == expected[i]
        assert axis.index(expected[i]) == i


@SETTINGS
@given(
    st.floats(-100, 100, allow_nan=False, allow_infinity=False),
    st.floats(-100, 100, allow_nan=False, allow_infinity=False),
    st.floats(0.01, 10, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
def test_float_range_length_matches_numpy_arange(
    start: float, stop: float, magnitude: float, negative: bool
) -> None:
    step = -magnitude if negative else magnitude
    axis = RangeAxis(start, stop, step)
    expected = np.arange(start, stop, step)
    assert len(axis) == len(expected)
    for i, want in enumerate(expected.tolist()):
        assert axis.value(i) == pytest.approx(want, rel=1e-12, abs=1e-9)
        assert axis.index(axis.value(i)) == i


def test_range_explicit() -> None:
    assert axis_values(RangeAxis(0, 4)) == [0, 1, 2, 3]
    assert axis_values(RangeAxis(10, 0, -3)) == [10, 7, 4, 1]
    assert len(RangeAxis(0, 1, 0.1)) == 10 == len(np.arange(0, 1, 0.1))
    assert len(RangeAxis(5, 5)) == 0
    assert len(RangeAxis(5, 0)) == 0


# ---------------------------------------------------------------- laziness
def test_million_point_sweep_is_lazy() -> None:
    tracemalloc.start()
    try:
        began = time.perf_counter()
        sweep = Sweep({"a": RangeAxis(0, 1000), "b": LinspaceAxis(0.0, 999.0, 1000)})
        assert len(sweep) == 1_000_000
        last = sweep.point(999_999)
        middle = sweep.point(123_456)
        assert sweep.index(last) == 999_999
        assert sweep.index(middle) == 123_456
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last == {"a": 999, "b": 999.0}
    assert middle == {"a": 123, "b": pytest.approx(456.0)}
    assert elapsed < 0.5
    assert peak < 1_000_000, f"peak traced memory {peak} bytes: the sweep was materialised"


def test_billion_point_sweep_from_a_spec_is_lazy() -> None:
    text = """
name: huge
parameters:
  a: {range: [0, 1000]}
  b: {linspace: [0.0, 1.0, 1001]}
  c: {range: [0, 1000000, 1000]}
  d: [x, y]
steps:
  s: {command: "echo {{a}} {{b}} {{c}} {{d}}", foreach: true}
"""
    tracemalloc.start()
    try:
        began = time.perf_counter()
        sweep = load_text(text).make_sweep()
        n = len(sweep)
        points = {i: sweep.point(i) for i in (0, 1, n // 2, n - 1)}
        indices = {i: sweep.index(p) for i, p in points.items()}
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 1000 * 1001 * 1000 * 2 == 2_002_000_000
    assert points[0] == {"a": 0, "b": 0.0, "c": 0, "d": "x"}
    assert points[1] == {"a": 0, "b": 0.0, "c": 0, "d": "y"}
    assert points[n - 1] == {"a": 999, "b": 1.0, "c": 999_000, "d": "y"}
    assert points[n // 2] == {"a": 500, "b": 0.0, "c": 0, "d": "x"}
    assert indices == {i: i for i in points}
    assert elapsed < 2.0
    assert peak < 4_000_000, f"peak traced memory {peak} bytes: the sweep was materialised"


# ---------------------------------------------------------- axis round trips
@SETTINGS
@given(st.integers(1, 6).flatmap(axis_of_length))
def test_axis_to_json_round_trips_through_a_spec(axis: Axis) -> None:
    spec = load_text_document({"p": axis.to_json()})
    parsed = spec.parameters["p"]
    assert len(parsed) == len(axis)
    assert axis_values(parsed) == axis_values(axis)


def load_text_document(parameters: dict[str, Any]) -> Any:
    from orchestrator.spec import parse_document

    return parse_document(
        {"name": "rt", "parameters": parameters, "steps": {"s": {"command": "true"}}}
    )
