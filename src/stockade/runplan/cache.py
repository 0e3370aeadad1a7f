"""The plan cache: compiled run plans under ``DATA_DIR/plans``, by key.

The key is a SHA-256 over the plan format, stockade's version, the config
file's bytes, its resolved path (relative paths in it resolve against
it) and, for every ``${NAME}`` written in the file, the name and a digest
of the variable's value (or its absence). A change to any of them is a
new key, so an old plan is never read for it. A plan is kept only when no
variable's value went into the config (:func:`cacheable`): the file holds
no value from the environment, so none of a secret's.

Plans are JSON, never pickle: a file that does not parse, is not a plan
of this format, names another key, is not a regular file (a link), or is
over :data:`MAX_PLAN_BYTES` is ignored, and the run compiles the config
again. ``STOCKADE_PLAN_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stockade import __version__
from stockade.configfile import names_in
from stockade.private import private_dir, private_opener
from stockade.runplan.model import FORMAT, PlanFormatError, RunPlan

__all__ = [
    "ENV_SWITCH", "MAX_PLANS", "MAX_PLAN_BYTES", "PlanCache", "cacheable", "enabled", "plan_key",
]  # fmt: skip

#: ``0`` (or ``off``, ``false``, ``no``) turns the plan cache off.
ENV_SWITCH = "STOCKADE_PLAN_CACHE"
#: The largest plan file read; a bigger one is ignored.
MAX_PLAN_BYTES = 16 * 1024 * 1024
#: The most plans kept: storing one more removes the oldest written.
MAX_PLANS = 64
_OFF = frozenset({"0", "off", "false", "no"})


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether the plan cache is on (it is unless :data:`ENV_SWITCH` says off)."""
    return environ.get(ENV_SWITCH, "").strip().lower() not in _OFF


def _digest(value: str | None) -> str:
    if value is None:
        return "-"
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def plan_key(text: bytes, path: Path, environ: Mapping[str, str]) -> str:
    """The key of the plan of the config ``text`` read from ``path``."""
    names = sorted(names_in(text.decode("utf-8", "replace")))
    head = json.dumps(
        [FORMAT, __version__, str(path.resolve()), [[n, _digest(environ.get(n))] for n in names]]
    )
    return hashlib.sha256(head.encode() + b"\0" + text).hexdigest()


def cacheable(text: bytes, lookups: Mapping[str, bool]) -> bool:
    """Whether a plan whose loading looked up ``lookups`` may be kept: no
    variable's value went into it, and every name looked up is one the key
    covers (written as ``${NAME}`` in ``text``, not spelled by a YAML escape)."""
    if any(lookups.values()):
        return False
    return set(lookups) <= names_in(text.decode("utf-8", "replace"))


class PlanCache:
    """The plans under ``data_dir``/plans."""

    def __init__(self, data_dir: str | Path) -> None:
        self.directory = Path(data_dir) / "plans"

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> RunPlan | None:
        """The plan stored for ``key``; ``None`` when there is none usable."""
        raw = _read_regular(self._path(key), MAX_PLAN_BYTES)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("key") != key:
                return None
            return RunPlan(data["plan"])
        except (ValueError, KeyError, PlanFormatError):
            return None

    def put(self, key: str, plan: dict[str, Any]) -> None:
        """Store ``plan`` (its data) for ``key``: a temporary file renamed over
        the old one, so a reader sees a whole plan or none. Errors are the
        caller's to ignore (a run does not need its plan kept)."""
        private_dir(self.directory)
        text = json.dumps({"key": key, "plan": plan}, separators=(",", ":"))
        temp = self.directory / f".{key}.{os.getpid()}.tmp"
        try:
            with open(temp, "x", encoding="utf-8", opener=private_opener) as fh:
                fh.write(text)
            os.replace(temp, self._path(key))
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self._prune()

    def _prune(self) -> None:
        """Remove the oldest-written plans beyond :data:`MAX_PLANS`: every edit
        of a file is a new key, so the directory would otherwise only grow."""
        aged: list[tuple[float, Path]] = []
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(OSError):
                aged.append((path.lstat().st_mtime, path))
        aged.sort()
        for _, path in aged[: max(0, len(aged) - MAX_PLANS)]:
            with contextlib.suppress(OSError):
                path.unlink()


def _read_regular(path: Path, limit: int) -> bytes | None:
    """``path``'s bytes if it is a regular file (not followed if a link) of at
    most ``limit`` bytes; ``None`` otherwise or when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                return None
            data = fh.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None
