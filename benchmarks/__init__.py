"""stockade's benchmarks: speed and memory figures, each against a baseline
measured in the same run on the same machine.

Absolute numbers say little across machines; a ratio to the cheapest way of
doing the same work (a bare asyncio spawn loop, a bare ``os.read`` loop, a
bare ``python -c pass``, a bare ``killpg``) says how much stockade costs.

Each ``bench_*`` module has ``run(quick: bool) -> list[Row]`` and is found by
its file name. ``python -m benchmarks`` runs every module in a fresh child
process (fresh heap, fresh peak RSS, no process-wide state such as the
subreaper flag carried from one benchmark to the next) and prints one table;
see ``__main__``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from stockade.runner.events import Event

__all__ = [
    "BIN",
    "MODULES",
    "REPO",
    "CountingSink",
    "Row",
    "alive",
    "cpu_count",
    "median",
    "ms",
    "progress",
    "wall",
]

REPO = Path(__file__).resolve().parent.parent
#: The venv's bin directory (``make bench`` runs ``.venv/bin/python``).
BIN = Path(sys.executable).parent
#: The first benchmarks in the table; any other ``bench_*.py`` follows by name.
FIRST = ("throughput_true", "output", "startup", "kill")


def _discover() -> dict[str, str]:
    """Short name -> module of every ``bench_*.py`` here, in table order."""
    found = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    ordered = [n for n in FIRST if n in found] + [n for n in found if n not in FIRST]
    return {name: f"benchmarks.bench_{name}" for name in ordered}


#: Short name -> module, in the order the table lists them. A new benchmark
#: is a ``bench_NAME.py`` with ``run(quick: bool) -> list[Row]``; nothing to register.
MODULES = _discover()


@dataclass
class Row:
    """One line of the table.

    ``ok`` is None for an informational row (no target), else whether the
    target was met. ``ratio`` is figure / baseline in the unit shown.
    ``error`` is set when the benchmark itself failed.
    """

    name: str
    figure: str
    baseline: str = "-"
    ratio: float | None = None
    target: str = "-"
    ok: bool | None = None
    note: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class CountingSink:
    """A sink that only counts output bytes: the cheapest possible consumer."""

    def __init__(self) -> None:
        self.bytes = 0
        self.events = 0

    def emit(self, event: Event) -> None:
        self.events += 1
        if event.raw is not None:
            self.bytes += len(event.raw)

    async def aclose(self) -> None:
        return None

    @property
    def dropped(self) -> int:
        return 0


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ms(seconds: float) -> str:
    """Seconds as a millisecond figure with about three significant digits."""
    millis = seconds * 1000
    digits = 2 if millis < 10 else 1 if millis < 100 else 0
    return f"{millis:.{digits}f} ms"


def wall(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    """Seconds ``cmd`` takes as a subprocess from start to exit; it must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, (cmd, proc.stderr[-500:])
    return elapsed


def progress(message: str) -> None:
    """Progress goes to stderr; stdout carries the rows."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def alive(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie (a zombie holds nothing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(")") + 2] not in "ZX"


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))
