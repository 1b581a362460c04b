"""Lazy parameter sweeps: a point is computed from its index, never stored in bulk.

Points are numbered 0..N-1. For `product`, the last axis varies fastest (the order of
`itertools.product`); for `zip`, point i takes the i-th value of every axis.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MAX_POINTS = 10**12  # beyond this a sweep is a mistake, and indices stop fitting in SQL BIGINT


class Axis:
    """One parameter's values, addressable by index without materialising them."""

    @property
    def size(self) -> int:
        """The number of values (a Python int: may exceed what len() can return)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.size

    def value(self, i: int) -> Any:
        raise NotImplementedError

    def index(self, value: Any) -> int:
        """The index of `value` on this axis (ValueError if absent)."""
        raise NotImplementedError

    def to_json(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class ListAxis(Axis):
    values: tuple[Any, ...]

    @property
    def size(self) -> int:
        return len(self.values)

    def value(self, i: int) -> Any:
        return self.values[i]

    def index(self, value: Any) -> int:
        return self.values.index(value)

    def to_json(self) -> Any:
        return list(self.values)


@dataclass(frozen=True)
class LinspaceAxis(Axis):
    """`n` evenly spaced values from `start` to `stop` inclusive, as numpy.linspace."""

    start: float
    stop: float
    n: int

    @property
    def size(self) -> int:
        return self.n

    def value(self, i: int) -> float:
        if not 0 <= i < self.n:
            raise IndexError(i)
        if i == self.n - 1 and self.n > 1:
            return float(self.stop)
        step = (self.stop - self.start) / (self.n - 1) if self.n > 1 else 0.0
        return float(self.start + i * step)

    def index(self, value: Any) -> int:
        if self.n == 1:
            if value == self.value(0):
                return 0
            raise ValueError(value)
        step = (self.stop - self.start) / (self.n - 1)
        guess = round((float(value) - self.start) / step) if step else 0
        for i in (guess, guess - 1, guess + 1):
            if 0 <= i < self.n and self.value(i) == value:
                return i
        raise ValueError(value)

    def to_json(self) -> Any:
        return {"linspace": [self.start, self.stop, self.n]}


@dataclass(frozen=True)
class RangeAxis(Axis):
    """`start, start+step, …` below `stop`, as Python's range (floats allowed)."""

    start: int | float
    stop: int | float
    step: int | float = 1

    @property
    def size(self) -> int:
        start, stop, step = self.start, self.stop, self.step
        if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
            span = (stop - start) if step > 0 else (start - stop)
            return max(0, -(-span // abs(step)))  # exact ceiling division
        return max(0, math.ceil((stop - start) / step))

    def value(self, i: int) -> int | float:
        if not 0 <= i < self.size:
            raise IndexError(i)
        return self.start + i * self.step

    def index(self, value: Any) -> int:
        guess = round((value - self.start) / self.step)
        if 0 <= guess < self.size and self.value(guess) == value:
            return guess
        raise ValueError(value)

    def to_json(self) -> Any:
        return {"range": [self.start, self.stop, self.step]}


SweepMode = Literal["product", "zip"]


class Sweep:
    """The points of a campaign: a product or a zip of named axes."""

    def __init__(self, axes: Mapping[str, Axis], mode: SweepMode = "product"):
        self.axes: dict[str, Axis] = dict(axes)
        self.mode: SweepMode = mode
        self._names = list(self.axes)
        self._lengths = [axis.size for axis in self.axes.values()]
        if mode == "zip" and len(set(self._lengths)) > 1:
            raise ValueError("zip axes must all have the same length")
        # strides for product: last axis fastest
        self._strides: list[int] = []
        stride = 1
        for length in reversed(self._lengths):
            self._strides.append(stride)
            stride *= length
        self._strides.reverse()

    @property
    def size(self) -> int:
        if not self._lengths:
            return 1
        if self.mode == "zip":
            return self._lengths[0]
        return math.prod(self._lengths)

    def __len__(self) -> int:
        return self.size

    @property
    def names(self) -> Sequence[str]:
        return self._names

    def point(self, index: int) -> dict[str, Any]:
        """The parameters of point `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"point {index} is outside 0..{len(self) - 1}")
        if self.mode == "zip":
            return {name: axis.value(index) for name, axis in self.axes.items()}
        return {
            name: axis.value((index // stride) % length)
            for (name, axis), stride, length in zip(
                self.axes.items(), self._strides, self._lengths, strict=True
            )
        }

    def index(self, point: Mapping[str, Any]) -> int:
        """The index of a point given by its parameters (ValueError if not in the sweep)."""
        if set(point) != set(self._names):
            raise ValueError(f"a point needs exactly the parameters {self._names}")
        positions = [self.axes[name].index(point[name]) for name in self._names]
        if self.mode == "zip":
            if len(set(positions)) > 1:
                raise ValueError("values are not on the same zip row")
            return positions[0] if positions else 0
        return sum(pos * stride for pos, stride in zip(positions, self._strides, strict=True))

    def iter_points(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        for i in range(start, len(self) if stop is None else min(stop, len(self))):
            yield self.point(i)


class ChainedSweep:
    """A campaign's base sweep followed by the blocks added to it while it ran (`extend`):
    block k's points come after every point of blocks 0..k-1, so indices never change."""

    def __init__(self, blocks: Sequence[Sweep]):
        if not blocks:
            raise ValueError("a chained sweep needs at least one block")
        names = set(blocks[0].names)
        for block in blocks[1:]:
            if set(block.names) != names:
                raise ValueError(f"every block needs exactly the parameters {sorted(names)}")
        self.blocks = list(blocks)
        self._starts: list[int] = []
        total = 0
        for block in self.blocks:
            self._starts.append(total)
            total += block.size
        self._size = total

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    @property
    def names(self) -> Sequence[str]:
        return self.blocks[0].names

    def point(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self._size:
            raise IndexError(f"point {index} is outside 0..{self._size - 1}")
        k = bisect.bisect_right(self._starts, index) - 1
        return self.blocks[k].point(index - self._starts[k])

    def index(self, point: Mapping[str, Any]) -> int:
        """The first index at which the point occurs."""
        for start, block in zip(self._starts, self.blocks, strict=True):
            try:
                return start + block.index(point)
            except ValueError:
                continue
        raise ValueError("the point is in none of the sweep's blocks")

    def iter_points(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        for i in range(start, self._size if stop is None else min(stop, self._size)):
            yield self.point(i)
