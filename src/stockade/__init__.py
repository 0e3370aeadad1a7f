"""stockade: run any command as a supervised, sandboxed, durable job.

The package root stays import-light on purpose: ``stockade exec -- true`` must
start in a few tens of milliseconds, so nothing heavy is imported here. The
public face (:func:`run`, :func:`arun`, :func:`sandboxed`; see
:mod:`stockade.api`) is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Result", "Sandbox", "__version__", "arun", "run", "sandboxed"]

_API = frozenset({"Result", "Sandbox", "arun", "run", "sandboxed"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from stockade import api

        return getattr(api, name)
    raise AttributeError(f"module 'stockade' has no attribute {name!r}")
