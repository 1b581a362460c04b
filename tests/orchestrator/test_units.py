"""Sizes and durations as people write them in specs (orchestrator.units)."""

from __future__ import annotations

import math

import pytest

from orchestrator.units import format_duration, parse_duration, parse_memory

GiB = 1024**3
MiB = 1024**2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1GiB", GiB),
        ("512MB", 512_000_000),
        ("512MiB", 512 * MiB),
        ("2GB", 2_000_000_000),
        ("2G", 2_000_000_000),
        ("1.5GiB", 3 * GiB // 2),
        (" 1GiB ", GiB),
        ("4kB", 4000),
        (100, 100),
        (1, 1),
    ],
)
def test_parse_memory_accepted(value: str | int, expected: int) -> None:
    result = parse_memory(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "positive"),
        (0, "positive"),
        ("0", "positive"),
        ("0B", "positive"),
        ("-1GiB", "positive"),
        ("lots", "'lots' is not a size"),
        ("10x", "'10x' is not a size"),
        ("1.5.2GiB", "is not a size"),
        (True, "expected a size such as '1GiB'"),
        (False, "expected a size such as '1GiB'"),
    ],
)
def test_parse_memory_rejected(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_memory(value)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize("value", ["lots", "10x"])
def test_parse_memory_message_shows_an_example(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_memory(value)
    assert "1GiB" in str(info.value)


@pytest.mark.parametrize("value", ["", "   "])
def test_parse_memory_rejects_blank(value: str) -> None:
    # dask.parse_bytes('') is 1: a blank size must not become one byte
    with pytest.raises(ValueError) as info:
        parse_memory(value)
    assert "1GiB" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("90s", 90.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("01:00:00", 3600.0),
        ("10:00", 600.0),  # MM:SS
        ("1:30", 90.0),
        ("25:00:00", 90000.0),
        ("2-00:00:00", 172800.0),
        ("1-02:03:04", 93784.0),
        ("2-00:00", 172800.0),  # D-HH:MM
        ("1-12:30", 131400.0),
        (" 10m ", 600.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepted(value: str | float, expected: float) -> None:
    result = parse_duration(value)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "positive"),
        (-0.5, "positive"),
        (0, "positive"),
        ("0s", "positive"),
        ("00:00:00", "positive"),
        ("-10m", "'-10m' is not a duration"),
        ("-01:00:00", "is not a duration"),
        ("lots", "'lots' is not a duration"),
        ("10x", "'10x' is not a duration"),
        ("10m30x", "is not a duration"),
        (True, "expected a duration such as '10m'"),
        (False, "expected a duration such as '10m'"),
        ("1:99:00", "below 60"),
        ("10:60", "below 60"),
        ("1-00:60", "below 60"),
    ],
)
def test_parse_duration_rejected(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize("value", ["lots", "10x", "-10m"])
def test_parse_duration_message_shows_examples(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    text = str(info.value)
    assert "10m" in text and "01:00:00" in text


@pytest.mark.parametrize("value", ["", "   "])
def test_parse_duration_rejects_blank_with_value_error(value: str) -> None:
    # dask.parse_timedelta('') raises IndexError, which pydantic would not turn into an issue
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert "10m" in str(info.value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_parse_duration_rejects_non_finite(value: float) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert "finite" in str(info.value) or "positive" in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(600.0, "00:10:00"), (5400.0, "01:30:00"), (172800.0, "48:00:00"), (59.6, "00:01:00")],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize("text", ["01:00:00", "1-02:03:04", "00:10:00", "48:00:00"])
def test_format_duration_round_trips_slurm_times(text: str) -> None:
    assert format_duration(parse_duration(text)) == format_duration(
        parse_duration(format_duration(parse_duration(text)))
    )
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
