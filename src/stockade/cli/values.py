"""Option values shared by the commands: job input, durations, sizes.

Standard library only: ``stockade exec`` imports this on its fast path.
Every bad value becomes a one-line :class:`UsageError` naming the option.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from stockade.errors import UsageError
from stockade.jsontext import text_problem

__all__ = ["duration", "parse_input", "size"]

T = TypeVar("T")


def parse_input(text: str | None) -> Any:
    """``--input``: JSON text, or ``@FILE`` holding JSON; ``None`` if not given."""
    if text is None:
        return None
    source = "--input"
    if text.startswith("@"):
        source = text[1:]
        try:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise UsageError(f"cannot read input file {source!r}: {exc.strerror}") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply to be job input") from None
    problem = text_problem(value)
    if problem is not None:
        raise UsageError(f"{source}: {problem}")
    return value


def duration(text: str, option: str) -> float:
    """A duration option (``500ms``, ``30s``, ``1h30m``, ``1.5``) in seconds."""
    from stockade.units import parse_duration

    return _parsed(parse_duration, text, option)


def size(text: str, option: str) -> int:
    """A size option (``512``, ``64KiB``, ``1MB``) in bytes."""
    from stockade.units import parse_size

    return _parsed(parse_size, text, option)


def _parsed(parse: Callable[[str], T], text: str, option: str) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from exc
