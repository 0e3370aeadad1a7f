"""``examples/ports`` end to end, as root: real ``make`` and ``gcc`` in
``chroot`` sandbox slots, packages built in dependency order into a shared
packages directory, a broken port whose dependents are skipped, and no
mount left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

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
