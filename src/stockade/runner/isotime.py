"""A POSIX timestamp as the UTC ISO 8601 text a result records.

Exactly what ``datetime.fromtimestamp(ts, UTC).isoformat(timespec=
"milliseconds")`` says (microseconds rounded half to even, then cut to
milliseconds), from :func:`time.gmtime`: importing :mod:`datetime` would
cost ``stockade exec`` more start-up than the rest of recording a result.
"""

from __future__ import annotations

import math
import time

__all__ = ["iso_utc"]


def iso_utc(ts: float) -> str:
    """``ts`` (seconds since the epoch) as ``YYYY-MM-DDTHH:MM:SS.mmm+00:00``."""
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)  # as datetime rounds: half to even
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    t = time.gmtime(whole)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{micros // 1000:03d}+00:00"
    )
