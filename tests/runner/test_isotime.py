"""The result's timestamps: the text datetime gives, without datetime."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from stockade.runner.isotime import iso_utc

#: Whole seconds, rounding on the half microsecond either way, carry into the
#: next second, and dates across leap years and the year 2038.
EDGES = [0.0, 1.0, 0.0005, 0.0004995, 0.0015, 0.9995, 0.9999994, 0.9999995, 0.9999996,
         951782400.5, 1700000000.123456, 1765123456.0625, 2147483647.999, 4102444800.5]  # fmt: skip


@pytest.mark.parametrize("ts", EDGES)
def test_edges_read_as_datetime_reads_them(ts: float) -> None:
    assert iso_utc(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def test_random_times_read_as_datetime_reads_them() -> None:
    rng = random.Random(18)
    for _ in range(20000):
        ts = rng.uniform(0, 4e9)
        assert iso_utc(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
