"""``examples/ports`` end to end, as root: real ``make`` and ``gcc`` in
``chroot`` sandbox slots, packages built in dependency order into a shared
packages directory, a broken port whose dependents are skipped, no mount
left behind, and Ctrl-C in the middle of a build leaving nothing at all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from stockade.sandbox.cgroup import cgroup2_root
from stockade.sandbox.leftovers import leftovers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ports"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
CHROOTS = Path("/run/stockade/chroot")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the chroot backend needs root"),
    pytest.mark.skipif(
        shutil.which("make") is None or shutil.which("gcc") is None,
        reason="needs make and gcc (`make sysdeps`)",
    ),
]


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A copy of the example: packages are written into the copy."""
    target = tmp_path / "ports"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".stockade", "*.tar.gz"))
    return target


def _mounts_of(pid: int) -> list[str]:
    mine = f"{CHROOTS}/{pid}-"
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if mine in line]


def test_ports_build_in_dependency_order(workspace: Path) -> None:
    proc = subprocess.Popen(
        [*STOCKADE, "run", "--json", "-j", "3"],
        cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    during: list[str] = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if not during and events[-1]["event"] == "job_output" and events[-1]["step"] == "build":
            during = _mounts_of(proc.pid)  # a slot's root is mounted while it builds
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 1, stderr
    assert any("/construction" in line for line in during), during
    finished = {e["job"]: e for e in events if e["event"] == "job_finish"}
    status = {job: (e["status"], e["reason"]) for job, e in finished.items()}

    # built, failed, skipped — and why
    for port in ("libcore", "libfmt", "hello", "tool"):
        assert status[f"build[{port}]"] == ("succeeded", None), port
        assert finished[f"build[{port}]"]["outputs"]["package"] == f"{port}.tar.gz"
    assert status["build[broken]"] == ("failed", "exit code 2")
    assert status["build[app]"] == ("skipped", "needs build[broken], which failed")
    assert status["build[bundle]"] == ("skipped", "needs build[app], which skipped")
    assert events[-1]["event"] == "run_finish" and events[-1]["status"] == "failed"

    # the compiler's error is in the broken port's log
    log_lines = Path(finished["build[broken]"]["log"]).read_text().splitlines()
    log = "".join(json.loads(line).get("text", "") for line in log_lines)
    assert "broken.c:5:5: error: expected" in log
    assert "make: *** [<builtin>: broken.o] Error 1" in log

    # dependency order: a port starts only after what it needs finished
    order = [(e["event"], e["job"]) for e in events if e["event"] in ("job_start", "job_finish")]
    for port, needs in {"libfmt": ["libcore"], "hello": ["libfmt"], "tool": ["libcore"],
                        "broken": ["libcore"]}.items():  # fmt: skip
        start = order.index(("job_start", f"build[{port}]"))
        for need in needs:
            assert order.index(("job_finish", f"build[{need}]")) < start, (port, need)
    assert ("job_start", "build[app]") not in order
    assert ("job_start", "build[bundle]") not in order

    # the packages directory holds exactly the built ports, usable
    packages = workspace / "packages"
    assert sorted(p.name for p in packages.glob("*.tar.gz")) == [
        "hello.tar.gz", "libcore.tar.gz", "libfmt.tar.gz", "tool.tar.gz",
    ]  # fmt: skip
    assert not list(packages.glob("*.tmp"))
    with tarfile.open(packages / "libfmt.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"lib/libfmt.a", "include/fmt.h", "share/ports/libfmt.needs"} <= names
    unpacked = workspace / "unpacked"
    with tarfile.open(packages / "hello.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    ran = subprocess.run([unpacked / "bin" / "hello"], capture_output=True, text=True, check=True)
    assert ran.stdout == "hello: total=10\n"  # linked against libfmt and libcore

    # built by the sandbox's user (nobody), not root
    assert (packages / "libcore.tar.gz").stat().st_uid == 65534

    # every chroot slot was taken down: no mount, no root directory left
    assert _mounts_of(proc.pid) == []
    assert not list(CHROOTS.glob(f"{proc.pid}-*"))


def test_ports_plain_output_reports_the_skipped(workspace: Path) -> None:
    done = subprocess.run(
        [*STOCKADE, "run", "--plain"],
        cwd=workspace, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "failed    build[broken]" in out
    assert "skipped   build[app] (needs build[broken], which failed)" in out
    assert "skipped   build[bundle] (needs build[app], which skipped)" in out
    assert "broken.c:" in out and "broken.o] Error 1" in out  # the tail of its log
    assert "succeeded build[hello]" in out


def _slow_libcore(workspace: Path) -> None:
    """Make the first port's build (everything needs it) take a minute, so
    Ctrl-C surely lands while make runs inside its chroot slot."""
    makefile = workspace / "ports" / "libcore" / "Makefile"
    text = makefile.read_text().replace("\t$(AR) rcs $@ $^", "\tsleep 60\n\t$(AR) rcs $@ $^")
    assert "sleep 60" in text
    makefile.write_text(text)


def _slot_pids(pid: int) -> dict[int, str]:
    """The processes in the slot cgroups of stockade process ``pid``, by command."""
    root = cgroup2_root()
    assert root is not None, "needs cgroup v2"
    found: dict[int, str] = {}
    for slot in (root / "stockade").glob(f"{pid}-*"):
        for procs in slot.rglob("cgroup.procs"):
            for line in procs.read_text().split():
                with_cmd = Path(f"/proc/{line}/cmdline")
                try:
                    found[int(line)] = with_cmd.read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start_mid_build(workspace: Path) -> tuple[subprocess.Popen[str], dict[int, str]]:
    """``stockade run`` of the ports, returned once libcore's make sleeps in its slot,
    with the processes of the run then."""
    proc = subprocess.Popen(
        [*STOCKADE, "run", "--plain", "-j", "3"],
        cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    pids: dict[int, str] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        pids = _slot_pids(proc.pid)
        if any(cmd.startswith("sleep 60") for cmd in pids.values()):
            return proc, pids
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"the build never reached its sleep: {pids}\n{out}\n{err}")


def _check_nothing_left(proc: subprocess.Popen[str], pids: dict[int, str]) -> None:
    assert [(pid, cmd) for pid, cmd in pids.items() if _alive(pid)] == []
    assert _mounts_of(proc.pid) == []
    assert leftovers(proc.pid) == []  # no mount, slot cgroup or chroot root of the run
    assert not list(CHROOTS.glob(f"{proc.pid}-*"))


def _recorded_run(workspace: Path) -> dict[str, Any]:
    """The newest run as the store holds it (``stockade runs latest --json``)."""
    shown = subprocess.run(
        [*STOCKADE, "runs", "latest", "--json"],
        cwd=workspace, capture_output=True, text=True, check=True,
    )  # fmt: skip
    run: dict[str, Any] = json.loads(shown.stdout)
    return run


def test_ctrl_c_mid_build_cancels_and_leaves_nothing(workspace: Path) -> None:
    _slow_libcore(workspace)
    proc, pids = _start_mid_build(workspace)
    assert any(cmd.startswith("make ") for cmd in pids.values()), pids
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - asked < 15  # the stop signal, not the sleep, ended it
    assert "stockade: cancelling" in err
    assert "cancelled build[libcore]" in out
    assert "ports: cancelled" in out

    run = _recorded_run(workspace)
    assert run["state"] == "cancelled"
    jobs = {j["job"]: (j["status"], j["reason"]) for j in run["jobs"]}
    assert jobs["build[libcore]"] == ("cancelled", None)  # no reason that repeats the status
    assert {status for job, (status, _) in jobs.items() if job.startswith("build[")} == {
        "cancelled",
        "skipped",
    }
    assert not (workspace / "packages" / "libcore.tar.gz").exists()
    _check_nothing_left(proc, pids)


def test_second_ctrl_c_forces(workspace: Path) -> None:
    _slow_libcore(workspace)
    script = workspace / "build-port.sh"  # the build ignores the stop signal...
    script.write_text(script.read_text().replace("set -eu\n", "set -eu\ntrap '' TERM\n", 1))
    config = workspace / "stockade.yaml"  # ...and the grace before SIGKILL is long
    config.write_text(
        config.read_text().replace(
            "    max_attempts: 1\n", "    max_attempts: 1\n    kill_grace: 2m\n", 1
        )
    )
    assert "trap '' TERM" in script.read_text() and "kill_grace: 2m" in config.read_text()
    proc, pids = _start_mid_build(workspace)
    proc.send_signal(signal.SIGINT)
    time.sleep(2)
    assert proc.poll() is None  # the first only asked; the job ignores it
    sleeping = [pid for pid, cmd in pids.items() if cmd.startswith("sleep 60")]
    assert sleeping and all(_alive(pid) for pid in sleeping)
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - asked < 15  # not the two minutes of grace
    assert "ports: cancelled" in out
    assert _recorded_run(workspace)["state"] == "cancelled"
    _check_nothing_left(proc, pids)
