"""Durations and sizes: the text forms, their errors, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        ("2d", 172800.0),
        ("1.5s", 1.5),
        ("30", 30.0),
        ("0.25", 0.25),
        (" 45 ", 45.0),
        ("1H", 3600.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10x", "-5", "-5s", "s", "1h-30m", "ten", "1.2.3s", "inf"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512", 512),
        ("512B", 512),
        ("64KiB", 64 * 1024),
        ("1MiB", 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("10KB", 10_000),
        ("5MB", 5_000_000),
        ("1GB", 10**9),
        ("1.5KiB", 1536),
        ("4k", 4096),
        ("1 mib", 1024**2),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12 bananas", "-1", "MiB", "1e3", "1.2.3KB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_formats() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(1.5) == "1s500ms"
    assert format_duration(0) == "0s"
    assert format_size(1024**2) == "1MiB"
    assert format_size(1000) == "1000"
    assert format_size(0) == "0"


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


@given(st.lists(st.tuples(st.sampled_from(sorted(_UNITS)), st.integers(0, 10_000)), min_size=1))
def test_composed_duration_parses_to_its_sum(parts: list[tuple[str, int]]) -> None:
    text = "".join(f"{count}{unit}" for unit, count in parts)
    expected = sum(count * _UNITS[unit] for unit, count in parts)
    assert parse_duration(text) == pytest.approx(expected)


@given(st.integers(0, 10**10))
def test_duration_round_trip_millis(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@given(st.integers(0, 2**50))
def test_size_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size


@given(
    st.integers(0, 10**6),
    st.sampled_from(["", "B", "KiB", "MiB", "GiB", "KB", "MB", "GB", "k", "m", "g"]),
)
def test_size_units(count: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "KB": 1000, "MB": 10**6, "GB": 10**9}.get(unit)
    if factor is None:
        factor = 1024 ** ("KMG".index(unit[0].upper()) + 1)
    assert parse_size(f"{count}{unit}") == count * factor
