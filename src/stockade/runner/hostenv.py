"""The environment an attempt starts from: an allow-list, or stockade's own.

A job's environment is built from an allow-list (:func:`base_env`: ``PATH``,
``HOME``, ``LANG``), to which the runner adds the task's variables, secrets,
input and the ``STOCKADE_*`` job contract. Only an attempt with
``inherit_env`` (``stockade exec`` of a local job, or a profile with
``env_policy: inherit``) starts from a copy of ``os.environ`` instead, and
even then without any of stockade's own ``STOCKADE_*`` variables (its API
token, its database URL, its settings): :func:`own_variable`. The values of
inherited secret-named variables (``*_TOKEN``, ``*_KEY`` …) are masked.

Decoding the whole environment and testing every name cost a worker running
short jobs tens of microseconds per attempt, for an environment that almost
never changes. :func:`inherited` keeps the decoded copy and its secret
values, and only redoes them when the raw environment differs from the one
they were made from (a C-level dict comparison, about a microsecond).
"""

from __future__ import annotations

import os

from stockade.runner.redact import is_secret_name

__all__ = ["NAMED_SECRET_MIN", "base_env", "inherited", "named_secret", "own_variable"]

#: The prefix of stockade's own variables; the runner sets the job's.
OWN_PREFIX = "STOCKADE_"

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


def own_variable(name: str) -> bool:
    """Whether ``name`` is one of stockade's own variables (``STOCKADE_*``):
    a credential or setting of stockade, never passed on to a job (the
    runner sets the job contract's ``STOCKADE_*`` variables itself)."""
    return name.startswith(OWN_PREFIX)


def base_env() -> dict[str, str]:
    """The allow-listed part of a job's environment: ``PATH``, ``HOME`` and
    ``LANG`` from stockade's (``PATH`` and ``LANG`` with defaults)."""
    env = {
        "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }
    home = os.environ.get("HOME")
    if home:
        env["HOME"] = home
    return env


def inherited() -> tuple[dict[str, str], tuple[str, ...]]:
    """A fresh copy of ``os.environ`` without stockade's own variables (the
    caller may change it) and the values in it to mask because of their
    variables' names."""
    global _raw, _decoded, _secrets  # noqa: PLW0603 - a cache of process-wide state
    raw = os.environ._data  # type: ignore[attr-defined]  # the bytes behind os.environ
    if raw != _raw:
        _raw = dict(raw)
        _decoded = {k: v for k, v in os.environ.items() if not own_variable(k)}
        _secrets = tuple(v for k, v in _decoded.items() if named_secret(k, v))
    return dict(_decoded), _secrets
