"""Progress bars per step: tqdm's widget in Jupyter, text bars in a terminal."""

from __future__ import annotations

from typing import Any


class ProgressBars:
    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._bars.values():
            bar.close()

    def update(self, steps: dict[str, dict[str, int]]) -> None:
        from tqdm.auto import tqdm

        for name, counts in steps.items():
            bar = self._bars.get(name)
            total = counts.get("total", 0)
            if bar is None:
                bar = self._bars[name] = tqdm(total=total, desc=name, unit="task")
            if bar.total != total:
                bar.total = total
            done = sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
            bar.n = done
            failed = counts.get("failed", 0)
            bar.set_postfix_str(
                f"running {counts.get('running', 0)}" + (f", failed {failed}" if failed else "")
            )
            bar.refresh()
