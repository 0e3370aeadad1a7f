"""A task's routing keys: the queue its jobs wait in and the labels they require.

A worker serves queues (``stockade worker --queue``) and offers labels
(``--label k=v``); it claims a job only if it serves the job's queue and
offers every label the job requires with the same value. Names and values
are short and plain (letters, digits, ``_ . : -``), safe on a command line,
in a URL and in the store's JSON.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from stockade.spec.types import StrictModel, Text

__all__ = ["LabelKey", "LabelValue", "QueueName", "Requires", "parse_label", "parse_queues"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_VALUE = re.compile(r"[A-Za-z0-9_.:-]{0,63}")
#: The longest queue name and label (the store's column holds 64 characters).
MAX_NAME = 63


def _key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid queue or label name: use up to {MAX_NAME} letters, "
            "digits, '_', '-' and '.', starting with a letter or digit"
        )
    return value


def _value(value: str) -> str:
    if not _VALUE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid label value: use up to {MAX_NAME} letters, digits, "
            "'_', '-', '.' and ':'"
        )
    return value


QueueName = Annotated[
    str,
    AfterValidator(_key),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"}),
]
"""A queue's name."""

LabelKey = QueueName
"""A label's name (the same form as a queue's)."""

LabelValue = Annotated[
    Text,
    AfterValidator(_value),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""A label's value; numbers and booleans are taken as their text (``gpu: 1``)."""


def _no_null(value: object) -> object:
    return {} if value is None else value


class Requires(StrictModel):
    """What a worker must offer to claim the task's jobs."""

    labels: Annotated[dict[LabelKey, LabelValue], BeforeValidator(_no_null)] = Field(
        default_factory=dict,
        description="Labels the worker must offer, each with this value (--label k=v).",
    )


def parse_label(text: str, option: str) -> tuple[str, str]:
    """``k=v`` of a command-line option as ``(k, v)``; ``ValueError`` says what to fix."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{option} {text!r}: write it as NAME=VALUE, e.g. {option} gpu=1")
    try:
        return _key(key.strip()), _value(value.strip())
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None


def parse_queues(text: str, option: str) -> tuple[str, ...]:
    """A comma-separated list of queue names, each once, in order."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise ValueError(f"{option} needs at least one queue name, e.g. {option} default,gpu")
    try:
        return tuple(_key(name) for name in names)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
