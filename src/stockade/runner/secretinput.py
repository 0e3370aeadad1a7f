"""Input fields that hold secrets: which they are, and the input with them masked.

A job's input is stored as given (a worker on another machine needs it to
run the job), so every place that shows a job shows :func:`masked_input`
instead. A field is secret when its ``INPUT_`` variable would be named like
a secret (``password``, ``api_token``, ``ssh_key`` …: see
:func:`~stockade.runner.redact.is_secret_name`) or when the task lists it in
``secret_inputs``. Its value is also masked in the job's output.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from stockade.runner.inputs import env_name, scalar_text
from stockade.runner.redact import MASK, is_secret_name

__all__ = ["masked_input", "secret_field", "secret_values"]


def secret_field(key: str, declared: Collection[str] = ()) -> bool:
    """Whether input field ``key`` holds a secret."""
    return key in declared or is_secret_name(env_name(key))


def secret_values(value: Any, declared: Collection[str] = ()) -> Iterator[tuple[str, str]]:
    """``(field, text)`` of every secret field of ``value`` (top level, as the
    input formats pass fields on)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and secret_field(key, declared):
                yield key, scalar_text(item)


def masked_input(value: Any, declared: Collection[str] = ()) -> Any:
    """``value`` with every secret field's value replaced by ``***`` (a copy;
    fields named like secrets in nested objects too)."""
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and secret_field(k, declared) else masked_input(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked_input(v) for v in value]
    return value
