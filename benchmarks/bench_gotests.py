"""Speed of Go tests: the Go example's pipeline against ``go test`` and gotestsum.

On go-cmp's sources (Debian's ``golang-github-google-go-cmp-dev``, a real
module, five packages with tests, over 500 tests), the same tree, the same
environment (``GOPROXY=off``, ``GOFLAGS=-mod=mod``, ``CGO_ENABLED=0`` as
the pipeline sets it), wall time of:

* ``go test -count=1 ./...`` (``-count=1``: no test result cache, which the
  pipeline has not either);
* ``gotestsum --format dots -- -count=1 ./...`` (Debian's ``gotestsum``);
* ``stockade run test --quiet`` with the shipped ``examples/go-tests``
  files copied next to the module (discover, ``go test -c`` per package in
  parallel, each binary through ``go tool test2json``, every job recorded
  in a SQLite store).

Cold: each command with a Go build cache of its own, empty. Warm: one
cache, filled first by a run of each, then the commands in turn. Targets:
within 1.1x of ``go test`` and no slower than gotestsum, cold and warm.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import BIN, REPO, Row, median, progress

GO_CMP = Path("/usr/share/gocode/src/github.com/google/go-cmp")
EXAMPLE = REPO / "examples" / "go-tests"
TARGET_GO = 1.1
TARGET_GOTESTSUM = 1.0


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds ``cmd`` took; it must succeed (go-cmp's tests all pass)."""
    import subprocess

    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).decode(errors="replace")[-1500:]
        raise RuntimeError(f"{cmd[0]} exited {done.returncode}: {tail}")
    return took


def _commands() -> dict[str, list[str]]:
    return {
        "go test": ["go", "test", "-count=1", "./..."],
        "gotestsum": ["gotestsum", "--format", "dots", "--", "-count=1", "./..."],
        "stockade": [str(BIN / "stockade"), "run", "test", "--quiet"],
    }


def _missing() -> str:
    for tool in ("go", "gotestsum"):
        if shutil.which(tool) is None:
            return f"needs {tool} (make sysdeps)"
    if not (GO_CMP / "go.mod").is_file():
        return "needs go-cmp's sources (golang-github-google-go-cmp-dev; make sysdeps)"
    return ""


def _rows(label: str, times: dict[str, list[float]]) -> list[Row]:
    ours, go, gts = (median(times[n]) for n in ("stockade", "go test", "gotestsum"))
    runs = len(times["stockade"])
    return [
        Row(
            f"gotests: {label}, stockade vs go test",
            f"{ours:.1f} s",
            f"{go:.1f} s (go test ./..., median of {runs})",
            ours / go,
            f"<= {TARGET_GO}x",
            ours / go <= TARGET_GO,
        ),
        Row(
            f"gotests: {label}, stockade vs gotestsum",
            f"{ours:.1f} s",
            f"{gts:.1f} s (gotestsum)",
            ours / gts,
            f"<= {TARGET_GOTESTSUM}x",
            ours / gts <= TARGET_GOTESTSUM,
        ),
    ]


def run(quick: bool) -> list[Row]:
    missing = _missing()
    if missing:
        return [Row("gotests", "-", error=missing)]
    commands = _commands()
    with tempfile.TemporaryDirectory(prefix="stockade-bench-go-") as tmp:
        root = Path(tmp)
        module = root / "go-cmp"
        shutil.copytree(GO_CMP, module, symlinks=False)
        for path in [EXAMPLE / "stockade.yaml", *EXAMPLE.glob("*.sh")]:
            shutil.copy(path, module / path.name)
        env = {
            **os.environ,
            "GOFLAGS": "-mod=mod",
            "GOPROXY": "off",
            "GOTOOLCHAIN": "local",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "0",
            "GOPATH": str(root / "gopath"),
            "STOCKADE_DATA_DIR": str(root / "data"),
        }
        cold: dict[str, list[float]] = {name: [] for name in commands}
        for rep in range(1 if quick else 2):
            for name, cmd in commands.items():
                progress(f"cold {name} ({rep + 1})")
                cache = root / f"cold-{rep}-{name.replace(' ', '-')}"
                cold[name].append(_timed(cmd, {**env, "GOCACHE": str(cache)}, module))
                shutil.rmtree(cache, ignore_errors=True)
        warm_env = {**env, "GOCACHE": str(root / "warm")}
        for name, cmd in commands.items():
            progress(f"filling the warm cache: {name}")
            _timed(cmd, warm_env, module)
        warm: dict[str, list[float]] = {name: [] for name in commands}
        for rep in range(1 if quick else 3):
            for name, cmd in commands.items():
                progress(f"warm {name} ({rep + 1})")
                warm[name].append(_timed(cmd, warm_env, module))
    return _rows("cold", cold) + _rows("warm", warm)
