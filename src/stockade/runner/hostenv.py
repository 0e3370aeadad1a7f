"""The environment an attempt inherits from stockade's own, read once per change.

Every attempt of a task with ``inherit_env`` starts from a copy of
``os.environ`` and masks the values of its secret-named variables
(``*_TOKEN``, ``*_KEY`` …). Decoding the whole environment and testing
every name cost a worker running short jobs tens of microseconds per
attempt, for an environment that almost never changes. :func:`inherited`
keeps the decoded copy and its secret values, and only redoes them when the
raw environment differs from the one they were made from (a C-level dict
comparison, about a microsecond).
"""

from __future__ import annotations

import os

from stockade.runner.redact import is_secret_name

__all__ = ["NAMED_SECRET_MIN", "inherited", "named_secret"]

#: Shortest value masked because its variable is named like a secret.
NAMED_SECRET_MIN = 4

_raw: dict[bytes, bytes] | None = None
_decoded: dict[str, str] = {}
_secrets: tuple[str, ...] = ()


def named_secret(name: str, value: str) -> bool:
    """Whether ``value`` is masked for being in a variable named like a secret.

    Values found only by their variable's name must be long enough that
    masking them cannot blank out ordinary text (``USE_KEY=1`` would
    otherwise turn every "1" into ***). Declared secrets mask at any length.
    """
    return len(value.strip()) >= NAMED_SECRET_MIN and is_secret_name(name)


def inherited() -> tuple[dict[str, str], tuple[str, ...]]:
    """A fresh copy of ``os.environ`` (the caller may change it) and the values
    in it to mask because of their variables' names."""
    global _raw, _decoded, _secrets  # noqa: PLW0603 - a cache of process-wide state
    raw = os.environ._data  # type: ignore[attr-defined]  # the bytes behind os.environ
    if raw != _raw:
        _raw = dict(raw)
        _decoded = dict(os.environ)
        _secrets = tuple(v for k, v in _decoded.items() if named_secret(k, v))
    return dict(_decoded), _secrets
