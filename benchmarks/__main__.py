"""``python -m benchmarks [NAME...] [--quick]``: run benchmarks, print one table.

Each benchmark module runs in its own child process (``--child NAME``), which
prints its rows as JSON on stdout; progress goes to stderr. A miss is printed
as MISS and the exit status stays 0 (figures are for people to read, not a
gate); a benchmark that crashes is an ERROR row and makes the status 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time

from benchmarks import MODULES, REPO, Row, cpu_count

COLUMNS = ("benchmark", "figure", "baseline", "ratio", "target", "result")


def _verdict(row: Row) -> str:
    if row.error:
        return "ERROR"
    if row.ok is None:
        return "info"
    return "PASS" if row.ok else "MISS"


def _run_child(name: str, quick: bool) -> list[Row]:
    """Run one module in a fresh interpreter; an ERROR row if it fails."""
    cmd = [sys.executable, "-m", "benchmarks", "--child", name, *(["--quick"] if quick else [])]
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, check=False)
    try:
        return [Row(**r) for r in json.loads(proc.stdout)]
    except (ValueError, TypeError):
        return [Row(name, "-", error=f"crashed (exit {proc.returncode}), see its stderr above")]


def _print_table(rows: list[Row]) -> None:
    cells = [
        (
            r.name,
            r.figure,
            r.baseline,
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            _verdict(r),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for c in [COLUMNS, *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
        if c is COLUMNS:
            print(line)
    print(line)
    for r in rows:
        if r.note:
            print(f"note: {r.name.strip()}: {r.note}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"subset to run: {', '.join(MODULES)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        module = importlib.import_module(MODULES[args.child])
        print(json.dumps([r.to_dict() for r in module.run(args.quick)]))
        return 0

    names = [n.removeprefix("bench_") for n in args.names] or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(MODULES)}")
    print(
        f"stockade benchmarks{' (quick)' if args.quick else ''}: python {platform.python_version()}"
        f", {platform.system()} {platform.release()}, {cpu_count()} cpus"
        f", load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    rows: list[Row] = []
    for name in names:
        print(f"[{name}]", file=sys.stderr, flush=True)
        started = time.monotonic()
        rows += _run_child(name, args.quick)
        print(f"  .. {name} took {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    _print_table(rows)
    misses = [r for r in rows if r.ok is False and not r.error]
    errors = [r for r in rows if r.error]
    passed = sum(1 for r in rows if r.ok)
    print(f"{passed} PASS, {len(misses)} MISS, {len(errors)} ERROR")
    for r in misses:
        ratio = "" if r.ratio is None else f", ratio {r.ratio:.2f}"
        print(f"MISS: {r.name.strip()}: {r.figure}{ratio}; target {r.target}")
    for r in errors:
        print(f"ERROR: {r.name}: {r.error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
