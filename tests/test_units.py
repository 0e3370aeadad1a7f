"""Durations and sizes: the text forms users write, and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("0", 0.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1s500ms", 1.5),
        ("2d", 172800.0),
        ("1m 30s", 90.0),
        ("  30s  ", 30.0),
        ("1H", 3600.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "-5",
        "-5s",
        "abc",
        "5x",
        "s",
        "1e3",
        "nan",
        "inf",
        "5 seconds",
        "1h-30m",
        "9" * 400,
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_duration_error_says_what_is_accepted() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("soon")
    message = str(info.value)
    assert "'soon'" in message
    assert "30s" in message


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("512", 512),
        ("512B", 512),
        ("64KiB", 64 * 1024),
        ("64kib", 64 * 1024),
        ("64K", 64 * 1024),
        ("64k", 64 * 1024),
        ("1MiB", 1024**2),
        ("1M", 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("10KB", 10_000),
        ("1MB", 1_000_000),
        ("1GB", 1_000_000_000),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("1 MiB", 1024**2),
        (" 4KiB ", 4096),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "-1", "-1KiB", "1XB", "KiB", "1.2.3", "one", "1e9", "1 K i B"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_parse_size_names_the_unknown_unit() -> None:
    with pytest.raises(ValueError, match="'Qb'"):
        parse_size("3Qb")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),
        (0.5, "500ms"),
        (1.5, "1s500ms"),
        (30, "30s"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400 + 1, "1d1s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, float("inf"), float("nan")])
def test_format_duration_rejects(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_duration(seconds)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0"),
        (512, "512"),
        (1024, "1KiB"),
        (1536, "1536"),
        (1024**2, "1MiB"),
        (3 * 1024**3, "3GiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_format_size_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_size(-1)


@given(st.integers(min_value=0, max_value=10**10))
def test_duration_round_trip_at_millisecond_precision(millis: int) -> None:
    assert round(parse_duration(format_duration(millis / 1000)) * 1000) == millis


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size
