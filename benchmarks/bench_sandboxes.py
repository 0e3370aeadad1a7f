"""Sandbox backends: per-launch cost of ``/bin/true``, and building a chroot.

Per launch: ``Sandbox.launch`` -> ``wait`` -> ``kill_all`` -> ``close`` on a
slot set up once (as a worker does), for each backend with no limits and
with memory + pids limits, the median over N launches. Each against the
bare tool in the same run, started from Python with pipes the same way:

- local: a bare ``Popen(["/bin/true"])``;
- bwrap: ``bwrap`` with the same namespaces and system mounts, run directly
  (stockade adds the uid switch through ``setpriv``, the seccomp filter,
  the workspace binds and the slot's cgroups);
- chroot: ``unshare --mount --pid --fork --mount-proc --root=ROOT`` into the
  same ready root (stockade adds the workspace binds, the uid switch and
  the cgroups, and makes the pid namespace itself);
- oci: ``runc run`` of a bundle with the same ``config.json``.

Targets (issue 3): bwrap with memory+pids <= 10 ms; chroot launch into a
ready root <= 5 ms; oci within 1.2x the bare runtime; setup and cleanup of
a 27-mount chroot root <= 100 ms each (the go-synth notes allowed 2 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import Row, median, ms, progress
from stockade.sandbox.base import LaunchRequest, Sandbox
from stockade.sandbox.proctree import enable_subreaper
from stockade.sandbox.registry import backend_class, create
from stockade.sandbox.table import system_entries
from stockade.spec.sandbox import SandboxProfile

LIMITS = {"memory": "256MiB", "pids": 256}
TARGET_BWRAP = 0.010
TARGET_CHROOT = 0.005
TARGET_OCI_RATIO = 1.2
TARGET_ROOT = 0.100
GO_SYNTH_BUDGET = 2.0


def _timed(fn: Callable[[], object], n: int) -> float:
    """Median seconds of ``fn()`` over ``n`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return median(times)


def _bare(argv: list[str], cwd: str | None = None) -> Callable[[], object]:
    def once() -> None:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        proc.communicate()

    return once


def _launcher(sandbox: Sandbox, request: LaunchRequest) -> Callable[[], object]:
    loop = asyncio.new_event_loop()

    async def launch() -> None:
        handle = sandbox.launch(request)
        try:
            await handle.wait()
            await handle.kill_all()
        finally:
            handle.close()

    return lambda: loop.run_until_complete(launch())


def _request(tmp: Path) -> LaunchRequest:
    workspace, runtime = tmp / "ws", tmp / "run"
    workspace.mkdir(exist_ok=True)
    runtime.mkdir(exist_ok=True)
    return LaunchRequest(
        argv=["/bin/true"],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd=str(workspace),
        workspace=str(workspace),
        marker="bench",
        runtime_dirs=[str(runtime)],
    )


def _bare_bwrap(workspace: str) -> list[str]:
    argv = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for entry in system_entries():
        if entry.kind == "symlink":
            argv += ["--symlink", entry.source, entry.target]
        else:
            argv += ["--ro-bind", entry.source, entry.target]
    return [*argv, "--bind", workspace, workspace, "--chdir", workspace, "/bin/true"]


def _bare_runc(sandbox: Any, tmp: Path, tag: str) -> Callable[[], object]:
    """``runc run`` of a copy of the slot's last bundle, with a fresh id per run."""
    bundle = tmp / f"bare-bundle-{tag}"
    shutil.copytree(sandbox.bundle, bundle, symlinks=True, dirs_exist_ok=True)
    spec = json.loads((bundle / "config.json").read_text())
    runs = iter(range(1_000_000))
    cid_prefix = f"stockade-{os.getpid()}-benchbare{tag}-"

    def once() -> None:
        cid = f"{cid_prefix}{next(runs)}"
        spec["linux"]["cgroupsPath"] = cid
        (bundle / "config.json").write_text(json.dumps(spec))
        argv = [sandbox.runtime, "--root", sandbox.state_dir, "run", "--bundle", str(bundle), cid]
        _bare(argv)()

    return once


def _launch_rows(backend: str, n: int, tmp: Path) -> list[Row]:
    usable = backend_class(backend).availability()
    if not usable.usable:
        return [Row(f"launch {backend}", "skipped", note=f"{backend}: {usable.reason}")]
    request = _request(tmp)
    rows = []
    for limited in (False, True):
        keys = {"backend": backend, **({"limits": LIMITS} if limited else {})}
        sandbox = create(SandboxProfile.model_validate(keys), slot=f"bench{int(limited)}")
        sandbox.setup()
        try:
            label = "memory+pids" if limited else "no limits"
            progress(f"{backend}, {label}: {n} launches of /bin/true")
            ours = _timed(_launcher(sandbox, request), n)
            bare_name, bare = _baseline(backend, sandbox, request, tmp, str(int(limited)))
            base = _timed(bare, n)
        finally:
            sandbox.cleanup()
        rows.append(_launch_row(backend, label, ours, base, bare_name))
    return rows


def _baseline(
    backend: str, sandbox: Sandbox, request: LaunchRequest, tmp: Path, tag: str
) -> tuple[str, Callable[[], object]]:
    if backend == "bwrap":
        return "bare bwrap", _bare(_bare_bwrap(request.workspace))
    if backend == "chroot":
        root = sandbox.root  # type: ignore[attr-defined]
        unshare = ["unshare", "--mount", "--pid", "--fork", "--mount-proc=/proc"]
        return "bare unshare+chroot", _bare([*unshare, f"--root={root}", "/bin/true"])
    if backend == "oci":
        return "bare runc run", _bare_runc(sandbox, tmp, tag)
    return "bare exec", _bare(["/bin/true"])


def _launch_row(backend: str, label: str, ours: float, base: float, bare_name: str) -> Row:
    ratio = ours / base
    target, ok = "-", None
    if backend == "bwrap" and label != "no limits":
        target, ok = f"<= {ms(TARGET_BWRAP)}", ours <= TARGET_BWRAP
    elif backend == "chroot":
        target, ok = f"<= {ms(TARGET_CHROOT)}", ours <= TARGET_CHROOT
    elif backend == "oci":
        target, ok = f"ratio <= {TARGET_OCI_RATIO}", ratio <= TARGET_OCI_RATIO
    return Row(
        f"launch {backend} /bin/true, {label}",
        ms(ours),
        f"{ms(base)} ({bare_name})",
        ratio,
        target,
        ok,
        note=f"{(ours - base) * 1000:+.2f} ms per launch over {bare_name}"
        if backend in ("bwrap", "chroot", "oci")
        else "",
    )


def _root_profile(tmp: Path) -> SandboxProfile:
    """15 binds + 6 tmpfs + /usr, /etc, root, /tmp, /dev, /dev/shm: 27 mounts here."""
    binds = []
    for i in range(15):
        src = tmp / f"src{i}"
        src.mkdir(exist_ok=True)
        binds.append({"type": "bind", "source": str(src), "target": f"/data/{i}"})
    tmpfs = [{"type": "tmpfs", "target": f"/scratch/{i}", "size": "16MiB"} for i in range(6)]
    return SandboxProfile.model_validate({"backend": "chroot", "mounts": binds + tmpfs})


def _root_rows(n: int, tmp: Path) -> list[Row]:
    usable = backend_class("chroot").availability()
    if not usable.usable:
        return [Row("chroot root setup", "skipped", note=f"chroot: {usable.reason}")]
    from stockade.sandbox import mounts

    profile = _root_profile(tmp)
    setups, cleanups, count = [], [], 0
    progress(f"chroot: {n} x setup + cleanup of a 27-mount root")
    for i in range(n + 1):
        sandbox = create(profile, slot=f"root{i}")
        started = time.perf_counter()
        sandbox.setup()
        setups.append(time.perf_counter() - started)
        count = len(mounts.mounts_under(sandbox.root))  # type: ignore[attr-defined]
        started = time.perf_counter()
        sandbox.cleanup()
        cleanups.append(time.perf_counter() - started)
    setup, cleanup = median(setups[1:]), median(cleanups[1:])
    budget = f"{GO_SYNTH_BUDGET * 1000:.0f} ms (go-synth budget)"
    return [
        Row(
            f"chroot setup, {count}-mount root",
            ms(setup),
            budget,
            setup / GO_SYNTH_BUDGET,
            f"<= {ms(TARGET_ROOT)}",
            setup <= TARGET_ROOT,
        ),
        Row(
            f"chroot cleanup, {count}-mount root",
            ms(cleanup),
            budget,
            cleanup / GO_SYNTH_BUDGET,
            f"<= {ms(TARGET_ROOT)}",
            cleanup <= TARGET_ROOT,
            note="cleanup unmounts in reverse and verifies /proc/self/mountinfo",
        ),
    ]


def run(quick: bool) -> list[Row]:
    enable_subreaper()
    n = 20 if quick else 100
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-sandbox-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        for backend in ("local", "bwrap", "chroot"):
            rows += _launch_rows(backend, n, tmp)
        rows += _launch_rows("oci", max(n // 4, 5), tmp)
        rows += _root_rows(max(n // 4, 5), tmp)
    return rows


if __name__ == "__main__":  # pragma: no cover - ``python -m benchmarks.bench_sandboxes``
    import sys

    for row in run("--quick" in sys.argv):
        print(row)
