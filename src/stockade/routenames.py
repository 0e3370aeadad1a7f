"""Queue and label names: their form, and the command-line options that give them.

Standard library only: ``stockade submit -- CMD`` parses ``--queue`` and
``--require`` without importing the spec's models
(:mod:`stockade.spec.routing` builds its types on these checks).
"""

from __future__ import annotations

import re

__all__ = ["MAX_NAME", "check_key", "check_value", "parse_label", "parse_queues"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_VALUE = re.compile(r"[A-Za-z0-9_.:-]{0,63}")
#: The longest queue name and label (the store's column holds 64 characters).
MAX_NAME = 63


def check_key(value: str) -> str:
    """``value`` if it is a valid queue or label name; ``ValueError`` says why not."""
    if not _KEY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid queue or label name: use up to {MAX_NAME} letters, "
            "digits, '_', '-' and '.', starting with a letter or digit"
        )
    return value


def check_value(value: str) -> str:
    """``value`` if it is a valid label value; ``ValueError`` says why not."""
    if not _VALUE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid label value: use up to {MAX_NAME} letters, digits, "
            "'_', '-', '.' and ':'"
        )
    return value


def parse_label(text: str, option: str) -> tuple[str, str]:
    """``k=v`` of a command-line option as ``(k, v)``; ``ValueError`` says what to fix."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{option} {text!r}: write it as NAME=VALUE, e.g. {option} gpu=1")
    try:
        return check_key(key.strip()), check_value(value.strip())
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None


def parse_queues(text: str, option: str) -> tuple[str, ...]:
    """A comma-separated list of queue names, each once, in order."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise ValueError(f"{option} needs at least one queue name, e.g. {option} default,gpu")
    try:
        return tuple(check_key(name) for name in names)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
