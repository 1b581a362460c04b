"""Sizes and durations as people write them in specs (`1GiB`, `10m`, `01:00:00`)."""

from __future__ import annotations

import math
import re

from dask.utils import parse_bytes, parse_timedelta

_SLURM_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_memory(value: str | int) -> int:
    """Bytes from `1GiB`, `512MB`, `2G` or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as '1GiB'")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be a positive size")
        return value
    if not str(value).strip():
        raise ValueError("expected a size such as '1GiB', got an empty string")
    try:
        size = parse_bytes(str(value).strip())
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a size (use e.g. '512MiB', '1GiB', '2GB')") from exc
    if size <= 0:
        raise ValueError("must be a positive size")
    return int(size)


def parse_duration(value: str | int | float) -> float:
    """Seconds from `10m`, `1h30m`, `90s`, SLURM's `[D-]HH:MM:SS`/`MM:SS`, or a number."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '10m' or '01:00:00'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("expected a duration such as '10m', got an empty string")
        match = _SLURM_TIME.match(text) if ":" in text else None
        seconds = _slurm_seconds(match) if match else _unit_seconds(text, value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be a positive, finite duration")
    return seconds


def _slurm_seconds(match: re.Match[str]) -> float:
    days, first, second, third = match.groups()
    parts = [int(p) for p in (first, second, third) if p is not None]
    if len(parts) == 3:
        hours, minutes, secs = parts
    elif days is not None:  # D-HH:MM
        hours, minutes, secs = parts[0], parts[1], 0
    else:  # MM:SS
        hours, minutes, secs = 0, parts[0], parts[1]
    if minutes >= 60 or secs >= 60:
        raise ValueError("minutes and seconds must be below 60")
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + secs)


def _unit_seconds(text: str, original: object) -> float:
    pieces = re.findall(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", text)
    if not pieces or "".join(n + u for n, u in pieces) != text.replace(" ", ""):
        try:
            return float(parse_timedelta(text))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(
                f"{original!r} is not a duration (use e.g. '90s', '10m', '1h30m', '01:00:00')"
            ) from exc
    try:
        return float(sum(parse_timedelta(n + u) for n, u in pieces))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{original!r} is not a duration (use e.g. '90s', '10m', '1h30m', '01:00:00')"
        ) from exc


def format_duration(seconds: float) -> str:
    """SLURM's `HH:MM:SS` (days folded into hours), for job scripts."""
    total = round(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
