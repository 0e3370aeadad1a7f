"""Spawning straight into the slot cgroup (clone3), and the portable fallback, for real."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.errors import LaunchError
from stockade.runner.result import Outcome
from stockade.sandbox import clonespawn
from stockade.sandbox.base import LaunchRequest, Sandbox
from stockade.sandbox.cgroup import cgroup2_root
from stockade.sandbox.local import LocalSandbox
from tests.sandbox.helpers import run_in

MakeSandbox = Callable[..., Sandbox]

pytestmark = pytest.mark.skipif(cgroup2_root() is None, reason="needs a cgroup v2 hierarchy")

# What a job sees of itself: its cgroup, session, open fds, ignored signals.
# The fds are those the shell was born with, listed by a program it execs
# (fstat opens nothing): listing /proc/$$/fd from inside a pipeline raced
# with the shell's own pipe fds.
_FDS = (
    "import os\n"
    "def is_open(fd):\n"
    "    try:\n"
    "        os.fstat(fd)\n"
    "    except OSError:\n"
    "        return False\n"
    "    return True\n"
    "print(*[fd for fd in range(256) if is_open(fd)])\n"
)
_PROBE = (
    "cat /proc/self/cgroup | grep '^0::'; "
    'echo "sid $(cut -d" " -f6 /proc/$$/stat) pid $$"; '
    f"{shlex.quote(sys.executable)} -c {shlex.quote(_FDS)}; "
    "grep SigIgn /proc/$$/status"
)


def _own_ignored() -> str:
    """This process's ``SigIgn`` mask, as hex."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return line.split()[1]
    raise AssertionError("no SigIgn in /proc/self/status")


def _slot(make_sandbox: MakeSandbox) -> LocalSandbox:
    sandbox = make_sandbox("local")
    assert isinstance(sandbox, LocalSandbox) and sandbox.cgroup is not None
    return sandbox


def test_the_extension_is_built_and_used_here() -> None:
    # The Makefile's system packages include gcc, so the install builds it.
    assert clonespawn.available(), "stockade.sandbox._clonespawn missing: reinstall with gcc"


@pytest.mark.parametrize("fast", [True, False], ids=["clone3", "portable"])
def test_job_is_born_in_its_slot_cgroup_as_a_clean_session_leader(
    fast: bool, make_sandbox: MakeSandbox, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(clonespawn._State, "refused", True)
    sandbox = _slot(make_sandbox)
    assert sandbox.cgroup is not None
    own = Path("/proc/self/cgroup").read_text()
    result, out, err = run_in(sandbox, _PROBE, workspace)
    assert result.outcome is Outcome.SUCCEEDED, err
    cgroup, session, fds, ignored = out.splitlines()
    assert cgroup.endswith("/" + sandbox.cgroup.path.name)
    _, sid, _, pid = session.split()
    assert sid == pid
    assert fds.split() == ["0", "1", "2"]  # nothing of stockade leaks into the job
    # SIGPIPE and SIGXFSZ (which Python ignores) are back to their defaults.
    # Anything else this process inherited as ignored is passed on, as
    # subprocess does: under a full suite run, signal 32 (glibc-internal) has
    # been seen ignored in the test process itself, not by stockade's doing.
    mine = int(_own_ignored(), 16) & ~((1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1)))
    job = int(ignored.split()[1], 16)
    assert job & ((1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))) == 0
    assert job == mine
    assert Path("/proc/self/cgroup").read_text() == own  # stockade itself never moved


def test_missing_program_and_bad_workdir_are_launch_errors(workspace: Path) -> None:
    sandbox = LocalSandbox(slot="clonespawn-errors")
    sandbox.setup()
    try:
        base = LaunchRequest(argv=["no-such-program-here"], env={"PATH": "/usr/bin:/bin"},
                             cwd=str(workspace), workspace=str(workspace), marker="m")  # fmt: skip
        with pytest.raises(LaunchError, match="no such file or command"):
            sandbox.launch(base)
        bad_cwd = LaunchRequest(argv=["true"], env={"PATH": "/usr/bin:/bin"},
                                cwd=str(workspace / "file"), workspace=str(workspace), marker="m")  # fmt: skip
        (workspace / "file").write_text("")
        with pytest.raises(LaunchError, match="not a directory"):
            sandbox.launch(bad_cwd)
        assert clonespawn.available()  # the job's fault: no fallback for the process
    finally:
        sandbox.cleanup()


def test_a_slot_whose_cgroup_was_killed_still_starts_jobs(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = _slot(make_sandbox)
    assert sandbox.cgroup is not None
    # A job that ignores SIGTERM and leaves a child: its end needs cgroup.kill.
    stuck, _, _ = run_in(
        sandbox, "trap '' TERM; sleep 30 & sleep 30", workspace, timeout=0.3, kill_grace=0.1
    )
    assert stuck.outcome is Outcome.TIMED_OUT and stuck.killed >= 1
    killed_dir = sandbox.cgroup.path
    after, out, _ = run_in(sandbox, "echo alive", workspace)
    assert after.outcome is Outcome.SUCCEEDED and out == "alive\n", after
    assert sandbox.cgroup.path != killed_dir and not killed_dir.exists()


def test_refused_clone3_falls_back_for_good(workspace: Path) -> None:
    # A child process so the module state of this one is untouched: clone3 into
    # a cgroup that is not a directory of cgroup v2 (a plain directory) is refused.
    code = f"""
import os, tempfile
from pathlib import Path
from stockade.sandbox import clonespawn
from stockade.sandbox.base import LaunchRequest
from stockade.sandbox.cgroup import SlotCgroup
assert clonespawn.available()
fake = SlotCgroup(Path(tempfile.mkdtemp()))
req = LaunchRequest(argv=["true"], env={{}}, cwd={str(workspace)!r}, workspace="/", marker="m")
assert clonespawn.spawn(["true"], req, fake, ()) is None
assert not clonespawn.available()
print("fell back")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout == "fell back\n", proc.stderr


def test_no_fd_left_for_the_pipes_is_a_launch_error_not_a_fallback(workspace: Path) -> None:
    # In a child process with a low fd limit all used up: the pipes cannot be
    # made. That is this launch's failure; clone3 stays in use afterwards.
    code = f"""
import os, resource
from stockade.errors import LaunchError
from stockade.sandbox import clonespawn
from stockade.sandbox.base import LaunchRequest
from stockade.sandbox.local import LocalSandbox
sandbox = LocalSandbox(slot="clonespawn-emfile")
sandbox.setup()
req = LaunchRequest(argv=["true"], env={{"PATH": "/usr/bin:/bin"}}, cwd={str(workspace)!r},
                    workspace={str(workspace)!r}, marker="m")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
try:
    sandbox.launch(req)
except LaunchError as exc:
    print("launch error:", exc.message)
for fd in held:
    os.close(fd)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print("clone3 still used:", clonespawn.available())
sandbox.cleanup()
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("launch error: cannot run 'true'"), proc.stdout + proc.stderr
    assert "open files" in lines[0]
    assert lines[1] == "clone3 still used: True"


def test_an_environment_the_kernel_cannot_take_is_refused_as_popen_does(workspace: Path) -> None:
    sandbox = LocalSandbox(slot="clonespawn-env")
    sandbox.setup()
    try:
        for env in ({"A=B": "1"}, {"A": "x\0y"}):
            request = LaunchRequest(argv=["true"], env=env, cwd=str(workspace),
                                    workspace=str(workspace), marker="m")  # fmt: skip
            with pytest.raises(ValueError, match="environment variable"):
                sandbox.launch(request)
    finally:
        sandbox.cleanup()
