"""Durations and sizes as people write them, and back.

Configuration and the command line accept ``30s``, ``1h30m``, ``500ms`` for
durations and ``64KiB``, ``2GiB``, ``10MB`` for sizes; everything inside
stockade works in seconds (``float``) and bytes (``int``). These parsers are
the one place the text forms are defined, so ``stockade.yaml``, ``stockade
exec --timeout`` and the HTTP API all agree. They are import-light (only
:mod:`re` and :mod:`math`) because the ad-hoc ``exec`` path uses them.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+(?:\.\d+)?|\.\d+)")

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)", re.IGNORECASE)

DURATION_HINT = "use a number of seconds or units like 500ms, 30s, 10m, 1h, 1h30m, 2d"
SIZE_HINT = "use a number of bytes or units like 64KiB, 1MiB, 2GiB (binary) or 10KB, 5MB (decimal)"


def parse_duration(text: str) -> float:
    """Parse a duration into seconds.

    Accepts a plain number of seconds (``"30"``, ``"1.5"``) or one or more
    ``<number><unit>`` parts with units ``ms``, ``s``, ``m``, ``h``, ``d``,
    optionally separated by spaces (``"1h30m"``, ``"1m 30s"``). Negative,
    infinite and empty values are rejected with a :class:`ValueError` whose
    message says what forms are accepted.
    """
    raw = text.strip()
    if not raw:
        raise ValueError(f"empty duration: {DURATION_HINT}")
    if _NUMBER.fullmatch(raw):
        total = float(raw)
    else:
        total = 0.0
        pos = 0
        compact = raw.replace(" ", "")
        while pos < len(compact):
            match = _DURATION_PART.match(compact, pos)
            if match is None:
                raise ValueError(f"bad duration {text!r}: {DURATION_HINT}")
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
            pos = match.end()
    # A plain number is checked too: float("9" * 400) is inf, not an error.
    if not math.isfinite(total):
        raise ValueError(f"bad duration {text!r}: too large")
    return total


def parse_size(text: str) -> int:
    """Parse a size into bytes.

    Accepts a plain number of bytes (``"512"``) or a number with a unit:
    binary ``KiB MiB GiB TiB`` (also written ``K M G T``, as ``docker`` and
    ``ulimit`` do) or decimal ``KB MB GB TB``; units are case-insensitive
    and ``B`` means bytes. Fractions are allowed (``"1.5GiB"``) and rounded
    to a whole byte. Anything else raises :class:`ValueError`.
    """
    raw = text.strip()
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise ValueError(f"bad size {text!r}: {SIZE_HINT}")
    unit = match.group(2).lower()
    if unit not in _SIZE_UNITS:
        raise ValueError(f"bad size {text!r}: unknown unit {match.group(2)!r}; {SIZE_HINT}")
    value = float(match.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(value):
        raise ValueError(f"bad size {text!r}: too large")
    return round(value)


def format_duration(seconds: float) -> str:
    """Render seconds in the shortest form :func:`parse_duration` reads back.

    Whole seconds become ``1h30m`` style text; fractions keep millisecond
    precision (``1.5s`` becomes ``1s500ms``).
    """
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"cannot format duration {seconds!r}")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


def format_size(size: int) -> str:
    """Render bytes with the largest binary unit that divides them exactly.

    ``1048576`` becomes ``1MiB`` and ``1000`` stays ``1000``, so the text
    always parses back to the same number of bytes.
    """
    if size < 0:
        raise ValueError(f"cannot format size {size!r}")
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
