"""What a short-lived CLI process loads at start-up, and how.

**asyncio without TLS** (:func:`asyncio_without_tls`): asyncio imports
:mod:`ssl` only to offer TLS transports, and loading OpenSSL costs about 28M
instructions (a sixth of ``stockade exec -- true``). ``exec`` and ``run`` only
run children and talk to pipes and local files, and nothing in stockade opens
a TLS connection through asyncio (notifications go through ``urllib``, which
imports ``ssl`` itself), so they import asyncio with ``ssl`` hidden; the module
is importable again afterwards for anything else that needs it.

**Garbage collection** (:func:`hold`, :func:`settle`):

Importing what ``stockade exec`` needs leaves some 25,000 objects the
collector tracks; it ran some forty collections while they loaded and full
ones over all of them as the interpreter exited: a tenth of the
instructions of ``stockade exec -- true``. Those objects (modules, classes,
functions) live as long as the process, so a process that runs the CLI and
nothing else (:func:`hold`, from the entry point) loads them with the
collector off and, once loaded (:func:`settle`), moves them out of its sight
for good (:func:`gc.freeze`) and turns it back on for what the job's run
allocates. A program that calls the CLI in-process (a test) never holds: its
collector is left as it was.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

__all__ = ["asyncio_without_tls", "hold", "settle"]

_held: list[bool] = []


def hold() -> None:
    """No collection until :func:`settle` (only in a process of its own)."""
    if gc.isenabled():
        gc.disable()
        _held.append(True)


def settle() -> None:
    """Everything is loaded: keep it out of every later collection, collect again."""
    if _held:
        _held.clear()
        gc.freeze()
        gc.enable()


def asyncio_without_tls() -> Any:
    """asyncio, imported with ``ssl`` hidden unless either is loaded already."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        import asyncio

        return asyncio
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import asyncio
    finally:
        del sys.modules["ssl"]
    return asyncio
